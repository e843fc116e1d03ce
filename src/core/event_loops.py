"""The event loop of each background thread `oas` runs (the recorder, the spend writer).

uvloop, as the server's own loop, for two reasons measured on the bench:
- its I/O costs less CPU: the recorder thread took 2.75-3.0 ms per tracked stream
  instead of 3.25-3.5 ms on asyncio's loop;
- waking it from the request loop does not hand the GIL away: asyncio's
  `call_soon_threadsafe` writes to a socket with the GIL released, so the woken thread
  could take the GIL and hold up the request loop; uvloop's wake-up keeps it.
"""

from __future__ import annotations

import asyncio

import uvloop


def background_loop() -> asyncio.AbstractEventLoop:
    """A new event loop for a thread of its own (run it with `run_forever`)."""
    return uvloop.new_event_loop()
