"""How a request becomes a Prefect flow run without Prefect on the path of its bytes.

`step` makes Prefect tasks that also run inside a `Run`: a recording of the flow's task
calls with their real timestamps and states. The coordinator runs a flow's function inside
a `Run`, and `Recorder` writes the finished recording to the Prefect API in the background
(flow run, task runs, artifact). Inside a real Prefect flow run (a replay deployment run)
the same tasks run through Prefect's own engine.
"""

from src.tracking.run import Run, annotate, current_run
from src.tracking.step import step

__all__ = ["Run", "annotate", "current_run", "step"]
