"""The benchmark's phases, in the order they run, each leaving its figures in `results`.

Every figure about `oas` is taken beside its floor, the same request sent straight to the
upstream by the same client in the same run, so differences and ratios mean something on
a machine whose speed varies from run to run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bench import outside, prefect_cost
from bench.bodies import claude_code_request, openai_request, small_request
from bench.client import Sample, Target, closed_loop, encode, open_loop, warm
from bench.processes import Oas, Prefect, Relay, Upstream
from bench.stats import summary


@dataclass
class Config:
    """How much to measure. `quick` is for a smoke run: small counts, SQLite only."""

    chunks: int = 200
    chunk_size: int = 16
    delay: float = 0.001
    samples: int = 100
    quick: bool = False

    @property
    def model(self) -> str:
        return f"bench/c{self.chunks}"

    @property
    def short_model(self) -> str:  # for the per-chunk slope: the same stream, 10x shorter
        return f"bench/c{max(1, self.chunks // 10)}"

    @property
    def paced_model(self) -> str:  # concurrent streams: chunks as a fast model sends them
        return f"bench/c{self.chunks}d{PACED_MS}"


#: milliseconds between chunks in the concurrency phases: 100 chunks/s, a fast model. At
#: the default 1 ms, 20 streams are 16,000 chunks/s, more than 2 cores can forward.
PACED_MS = 10


class Bodies:
    """Every request body of the run, encoded once: Anthropic for oas, OpenAI for the floor."""

    def __init__(self, config: Config) -> None:
        m, short, paced = config.model, config.short_model, config.paced_model
        self.anthropic: dict[str, bytes] = {}
        self.openai: dict[str, bytes] = {}
        shapes = {
            "small": small_request(m, False),
            "small-stream": small_request(m, True),
            "short-stream": small_request(short, True),
            "paced-stream": small_request(paced, True),
            "claude-code-stream": claude_code_request(30, model=m, stream=True),
        }
        for name, body in shapes.items():
            self.anthropic[name] = encode(body)
            self.openai[name] = encode(openai_request(body))

    def size(self, name: str) -> int:
        return len(self.anthropic[name])


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class Suite:
    """One benchmark run; `results` is what the report is written from."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.bodies = Bodies(config)
        self.results: dict[str, Any] = {
            "config": asdict(self.config),
            "phases": {},
            "samples": {},
            "prefect": {},
            "cpu": {},
            "memory": {},
            "cold_start": {},
            "throughput": {},
            "outside": {},
        }
        self.upstream: Upstream | None = None
        self.direct: Target | None = None
        self.relay: Relay | None = None

    # ---- recording helpers -------------------------------------------------------------

    def _keep(self, key: str, samples: list[Sample], wall: float | None = None) -> dict:
        stats = summary(samples, wall)
        self.results["phases"][key] = stats
        self.results["samples"][key] = [[round(s.ttfb, 6), round(s.total, 6)] for s in samples]
        flag = "" if stats["errors"] == 0 else f"  ERRORS {stats['errors']}: {stats['first_error']}"
        print(
            f"  {key:<44} n={stats['n']:<5} ttfb p50 {stats['ttfb_ms']['p50']:8.2f} ms  "
            f"total p50 {stats['total_ms']['p50']:8.2f} ms{flag}",
            flush=True,
        )
        return stats

    def _sequential(self, target: Target, shape: str, key: str, count: int | None = None) -> dict:
        stream = "stream" in shape
        body = (self.bodies.openai if target.name == "direct" else self.bodies.anthropic)[shape]
        samples, wall = run(closed_loop(target, body, stream, count or self.config.samples, 1))
        return self._keep(key, samples, wall)

    def _cpu(self, oas: Oas, key: str, work: Any, requests: int, chunks: int) -> None:
        before = oas.cpu()
        work()
        if key.startswith("tracked-"):  # ("untracked/..." contains "tracked")
            oas.drain()
            time.sleep(0.6)  # the recorder's last batch of task-run events
        used = oas.cpu() - before
        self.results["cpu"][key] = {
            "requests": requests,
            "cpu_seconds": round(used, 4),
            "us_per_request": round(used / requests * 1e6, 1),
            "us_per_chunk": round(used / (requests * chunks) * 1e6, 2) if chunks else None,
        }
        print(f"  cpu {key:<40} {used / requests * 1e6:9.0f} us/request", flush=True)

    # ---- phases ------------------------------------------------------------------------

    def floor_upstream(self) -> None:
        """Start the bench upstream (`floor` does, or `--only` parts before they run)."""
        c = self.config
        self.upstream = Upstream(c.chunks, c.chunk_size, c.delay)

    def floor(self) -> None:
        """The same requests straight to the upstream."""
        c = self.config
        self.floor_upstream()
        self.direct = Target.upstream(self.upstream.base_url)
        print("direct to the upstream (the floor)", flush=True)
        run(warm(self.direct, self.bodies.openai["small-stream"], True))
        for shape in ("small", "small-stream", "claude-code-stream"):
            before = self.upstream.cpu()
            self._sequential(self.direct, shape, f"direct/{shape}/c1")
            if shape == "small-stream":  # what a process here spends to emit one chunk
                used = self.upstream.cpu() - before
                self.results["cpu"]["upstream/small-stream"] = {
                    "requests": c.samples,
                    "cpu_seconds": round(used, 4),
                    "us_per_request": round(used / c.samples * 1e6, 1),
                    "us_per_chunk": round(used / (c.samples * c.chunks) * 1e6, 2),
                }
        for concurrency in (20, 100):
            for shape in ("small-stream", "paced-stream"):
                samples, wall = run(
                    closed_loop(
                        self.direct,
                        self.bodies.openai[shape],
                        True,
                        self._concurrent_count(concurrency),
                        concurrency,
                    )
                )
                self._keep(f"direct/{shape}/c{concurrency}", samples, wall)

    def routing(self) -> None:
        """CPU per route choice (bench/routing.py): a function call, no server needed."""
        from bench.routing import route_choice

        self.results["routing"] = figure = route_choice()
        print(
            f"  route choice, {figure['rules']} rules: {figure['us_per_choice']} us CPU "
            f"(conversation scan for images/documents: {figure['scan_us']} us)",
            flush=True,
        )

    def _concurrent_count(self, concurrency: int) -> int:
        return concurrency * (2 if self.config.quick else 4)

    def oas_sequential(self, oas: Oas, name: str) -> None:
        """Time to first byte and total, one request at a time; CPU per request and chunk."""
        target = Target.oas(oas.base_url, name)
        run(warm(target, self.bodies.anthropic["small-stream"], True))
        run(warm(target, self.bodies.anthropic["small"], False))
        c = self.config
        self._cpu(
            oas,
            f"{name}/small",
            lambda: self._sequential(target, "small", f"{name}/small/c1"),
            c.samples,
            0,
        )
        self._cpu(
            oas,
            f"{name}/small-stream",
            lambda: self._sequential(target, "small-stream", f"{name}/small-stream/c1"),
            c.samples,
            c.chunks,
        )
        short = max(1, c.chunks // 10)
        self._cpu(
            oas,
            f"{name}/short-stream",
            lambda: self._sequential(target, "short-stream", f"{name}/short-stream/c1"),
            c.samples,
            short,
        )
        self._sequential(
            target, "claude-code-stream", f"{name}/claude-code-stream/c1", max(10, c.samples // 2)
        )

    def concurrency(self, oas: Oas, name: str, paced_c20_runs: int = 1) -> None:
        """Closed loops of 20 and 100 streams; the paced 20 again `paced_c20_runs` - 1
        times, as `{name}/paced-stream/c20#2`..., for a target that must hold in every run."""
        target = Target.oas(oas.base_url, name)
        for concurrency in (20, 100):
            for shape in ("small-stream", "paced-stream"):
                samples, wall = run(
                    closed_loop(
                        target,
                        self.bodies.anthropic[shape],
                        True,
                        self._concurrent_count(concurrency),
                        concurrency,
                    )
                )
                self._keep(f"{name}/{shape}/c{concurrency}", samples, wall)
        for again in range(2, paced_c20_runs + 1):
            samples, wall = run(
                closed_loop(
                    target,
                    self.bodies.anthropic["paced-stream"],
                    True,
                    self._concurrent_count(20),
                    20,
                )
            )
            self._keep(f"{name}/paced-stream/c20#{again}", samples, wall)

    def max_throughput(self, oas: Oas, name: str, concurrency: int = 32) -> None:
        """Closed loop, short non-stream answers: requests per second `oas` sustains."""
        target = Target.oas(oas.base_url, name)
        body = encode(small_request(f"bench/c{max(1, self.config.chunks // 10)}", False))
        count = 300 if self.config.quick else 2000
        before = oas.prefect_stats()
        samples, wall = run(closed_loop(target, body, False, count, concurrency))
        stats = self._keep(f"{name}/throughput/c{concurrency}", samples, wall)
        after = oas.drain()
        self.results["throughput"][name] = {
            "requests": count,
            "seconds": round(wall, 3),
            "rps": stats["rps"],
            "errors": stats["errors"],
            **_tracking_delta(before, after),
        }
        print(f"  throughput {name}: {stats['rps']:.0f} requests/s", flush=True)

    def sustained(self, oas: Oas, name: str, rate: float, seconds: float) -> dict:
        """Short streams started at a fixed rate: all served, how many tracked, how late.

        Short (a tenth of the chunks), so that what is measured is what tracking can take,
        not how many chunks 2 cores can stream."""
        target = Target.oas(oas.base_url, name)
        before = oas.drain()  # runs of the phases before are written first
        samples, wall = run(
            open_loop(target, self.bodies.anthropic["short-stream"], True, rate, seconds)
        )
        stats = self._keep(f"{name}/rate{rate:g}", samples, wall)
        drain_started = time.perf_counter()
        after = oas.drain(timeout=300)
        recorded_in = wall + (time.perf_counter() - drain_started)
        delta = _tracking_delta(before, after)
        out = {
            "rate": rate,
            "seconds": seconds,
            "requests": len(samples),
            "errors": stats["errors"],
            "achieved_rps": round(len(samples) / wall, 1),
            "recorded_rps": round(delta["tracked"] / recorded_in, 1),
            "start_lag_p99_ms": stats["lag_ms"]["p99"],
            **delta,
        }
        self.results["throughput"][f"{name}/rate{rate:g}"] = out
        print(f"  rate {rate:g}/s {name}: {out}", flush=True)
        return out

    def memory(self, oas: Oas, name: str) -> None:
        """Resident size after warm-up (1,000 requests: caches and the allocator's arenas
        at their working size) and after 1,000 more: what each request leaves behind."""
        target = Target.oas(oas.base_url, name)
        body = self.bodies.anthropic["small"]
        count = 300 if self.config.quick else 1000
        run(closed_loop(target, body, False, count, 8))
        oas.drain(timeout=300)
        time.sleep(1)
        warm_rss = oas.rss()
        samples, _ = run(closed_loop(target, body, False, count, 8))
        oas.drain(timeout=300)
        time.sleep(1)
        after = oas.rss()
        self.results["memory"][name] = {
            "after_warmup_mb": round(warm_rss / 2**20, 1),
            "requests": count,
            f"after_{count}_mb": round(after / 2**20, 1),
            "growth_kb_per_request": round((after - warm_rss) / count / 1024, 2),
            "errors": sum(not s.ok for s in samples),
        }
        print(f"  memory {name}: {self.results['memory'][name]}", flush=True)

    def prefect_cost(self, oas: Oas, prefect: Prefect, name: str) -> None:
        """What `oas` writes to Prefect per request (API calls and bytes, task-run events,
        log lines, session artifact versions), the database rows and bytes that adds, and
        the payload store's bytes."""
        target = Target.oas(oas.base_url, name)
        turns = 5 if self.config.quick else 20
        oas.drain(timeout=300)
        db_before, api_before = prefect_cost.settled(prefect), oas.prefect_stats()
        small = self.bodies.anthropic["small-stream"]
        count = 10 if self.config.quick else 50
        run(closed_loop(target, small, True, count, 1))
        oas.drain()
        db_mid, api_mid = prefect_cost.settled(prefect), oas.prefect_stats()
        # a Claude Code session: the same system prompt and tools, the conversation grows;
        # its session id (in metadata.user_id) gives it its keyed session artifact
        session = {"user_id": f"user_bench_account__session_{name}-{time.time_ns()}"}
        for turn in range(turns):
            turn_body = claude_code_request(10 + turn, model=self.config.model, stream=True)
            body = encode(turn_body | {"metadata": session})
            run(closed_loop(target, body, True, 1, 1))
        oas.drain()
        db_after, api_after = prefect_cost.settled(prefect), oas.prefect_stats()
        session_bytes = sum(
            len(encode(claude_code_request(10 + t, model=self.config.model, stream=True)))
            for t in range(turns)
        )
        self.results["prefect"][name] = {
            "small": {
                "requests": count,
                **_writes(api_before, api_mid, count),
                "database_per_request": prefect_cost.per_request(db_before, db_mid, count),
                "payload_bytes_per_request": _per(api_before, api_mid, "payload_new_bytes", count),
            },
            "claude_code_session": {
                "requests": turns,
                "request_kb_avg": round(session_bytes / turns / 1024, 1),
                **_writes(api_mid, api_after, turns),
                "database_per_request": prefect_cost.per_request(db_mid, db_after, turns),
                "payload_bytes_per_request": _per(api_mid, api_after, "payload_bytes", turns),
                "payload_new_bytes_per_request": _per(
                    api_mid, api_after, "payload_new_bytes", turns
                ),
            },
        }
        print(f"  prefect cost {name}: {self.results['prefect'][name]}", flush=True)

    def outside(self, oas: Oas, name: str) -> None:
        """The outside view (`bench/outside.py`): back-to-back and paced (1 ms) upstreams."""
        count = 8 if self.config.quick else 40
        direct = self.direct or Target.upstream(self.upstream.base_url)  # type: ignore[union-attr]
        for label, delay_ms in (("b2b", 0), ("paced", 1)):
            key = f"{name}/{label}"
            result = run(
                outside.compare(
                    direct, Target.oas(oas.base_url), 100, delay_ms, count, oas.cpu, oas.drain
                )
            )
            self.results["outside"][key] = result
            outside.show(f"outside {key}", result)
            for side in ("direct", "oas"):  # failed streams count as the phases' do
                self.results["phases"][f"outside/{key}/{side}"] = {
                    "n": count,
                    "errors": result[side]["errors"],
                    "first_error": result[side]["first_error"],
                    "ttfb_ms": result[side]["first_delta_ms"],
                    "total_ms": result[side]["total_ms"],
                    "lag_ms": {},
                }

    def cold_start(self, key: str, seconds: float) -> None:
        self.results["cold_start"][key] = round(seconds, 2)
        print(f"  ready: {key} {seconds:.2f} s", flush=True)

    def ready_again(self, key: str, start: Callable[[], Oas], runs: int) -> None:
        """Start and stop `oas` `runs` more times: every ready time, as `key` plus `#2`..."""
        for again in range(2, runs + 1):
            oas = start()
            oas.stop()
            self.cold_start(f"{key}#{again}", oas.ready_seconds)

    def relay_floor(self) -> None:
        """The bare relay (`bench/relay.py`) measured as `outside` measures `oas`: what
        a chunk costs the stack `oas` runs on, before anything of `oas`."""
        count = 8 if self.config.quick else 40
        direct = self.direct or Target.upstream(self.upstream.base_url)  # type: ignore[union-attr]
        self.relay = Relay(self.upstream.base_url)  # type: ignore[union-attr]
        target = Target("relay", f"{self.relay.base_url}/v1/chat", b"[DONE]", direct.headers)
        for label, delay_ms in (("b2b", 0), ("paced", 1)):
            used = run(outside.floor(direct, target, 100, delay_ms, count, self.relay.cpu))
            self.results["outside"][f"relay/{label}"] = {"us_per_chunk": used}
            print(f"  bare relay ({label}): {used:.0f} us CPU/chunk", flush=True)
        self.relay.stop()
        self.relay = None

    def stop(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        if self.upstream is not None:
            self.upstream.stop()


def _per(before: dict, after: dict, key: str, requests: int) -> float:
    return round((after.get(key, 0) - before.get(key, 0)) / max(1, requests), 1)


def _writes(before: dict, after: dict, requests: int) -> dict:
    """Per request: the recorder's API calls and request bytes, events, log lines and
    session artifact versions."""
    return {
        f"{key}_per_request": _per(before, after, key, requests)
        for key in ("api_calls", "api_bytes", "events", "log_lines", "session_writes")
    }


def _tracking_delta(before: dict, after: dict) -> dict:
    return {
        key: after.get(key, 0) - before.get(key, 0)
        for key in ("tracked", "untracked", "late", "api_calls", "api_retries")
    } | {
        key: after.get(key, 0)
        for key in ("record_lag_p50_seconds", "record_lag_p99_seconds", "pending", "writing")
    }
