"""sweep(backend="ray") on a real two-node Ray cluster on 127.0.0.1: a worker SIGKILLed mid-sweep is
retried, every entry lands whole in the driver's cache, results equal the local backend's bit for bit,
and a worker whose code differs from the driver's is refused.

Skipped without Ray, except where $DLCOURSE_REQUIRE_RAY is set (CI installs the extra).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import make_idx_dataset
from dlcourse import cache, runs

if os.environ.get("DLCOURSE_REQUIRE_RAY"):
    import ray  # noqa: F401 - in CI a missing Ray fails here
else:
    ray = pytest.importorskip("ray")

from dlcourse.runs import remote  # noqa: E402

pytestmark = pytest.mark.slow
TASK = "ray::dlcourse.train_batch"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_start(args: list[str], env: dict, log: Path, timeout: float = 240) -> subprocess.Popen:
    """`ray start ... --block` in a session of its own (the test stops it, and only it, by its group
    id), once it says that its node is up."""
    exe = Path(sys.executable).with_name("ray")
    # Agent ports given, not chosen by the agents: the raylet then does not wait for their port
    # files (15 s, then it aborts; a loaded machine starts the agents more slowly than that).
    ports = [f"--{name}={_free_port()}" for name in ("metrics-export-port", "dashboard-agent-grpc-port",
                                                     "dashboard-agent-listen-port", "runtime-env-agent-port")]
    cmd = [str(exe), "start", "--block", "--num-gpus", "0", *ports,
           "--object-store-memory", str(80 * 2**20), "--disable-usage-stats", *args]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while "Ray runtime started" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"`ray start {' '.join(args)}` did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    """The process group of one `ray start`: its raylet, workers and (on the head) GCS."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_for_nodes(address: str, n: int, procs, timeout: float = 180) -> None:
    # The package ships as in `remote.connect`. (Ray reads 127.0.0.1 as this machine's own
    # address, and so do the nodes: forcing them onto 127.0.0.1 leaves the driver no node to join.)
    ray.init(address=address, runtime_env=remote.runtime_env(), log_to_driver=False, configure_logging=False)
    deadline = time.monotonic() + timeout
    while sum(node["Alive"] for node in ray.nodes()) < n:
        assert all(p.poll() is None for p in procs), "a `ray start` exited"
        assert time.monotonic() < deadline, f"the cluster has {len(ray.nodes())} of {n} nodes"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second node, one CPU each, on 127.0.0.1; its driver connected; torn down after."""
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    data = make_idx_dataset(temp / "data", "mnist", seed=1)
    # A throwaway cluster on loopback: no auth token to hand from `ray start` to the driver.
    mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    # A loaded machine starts the nodes' agents slowly: give them 3 minutes, not Ray's 30 s.
    env = {**os.environ, "DLCOURSE_DATA": str(data), "RAY_ADDRESS": "", "RAY_agent_register_timeout_ms": "180000",
           "RAY_raylet_start_wait_time_s": "180"}
    port = _free_port()
    procs = []
    try:
        procs.append(_ray_start(["--head", "--port", str(port), "--num-cpus", "1", "--include-dashboard=false",
                                 "--temp-dir", str(temp / "ray")], env, temp / "head.log"))
        procs.append(_ray_start(["--address", f"127.0.0.1:{port}", "--num-cpus", "1"], env, temp / "node.log"))
        _wait_for_nodes(f"127.0.0.1:{port}", 2, procs)
        yield {"address": f"127.0.0.1:{port}", "data": data}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)
        if mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = mode


def _specs() -> list[runs.RunSpec]:
    """16 tiny specs in 4 stacking groups (two widths x two batch sizes), 4 seeds x lrs each."""
    return [runs.RunSpec(dataset="mnist", train_size=400, test_size=100, hidden=(h,), batch_size=b, epochs=3,
                         seed=s, lr=1e-3 * (1 + s % 2), device="cpu")
            for h in (8, 12) for b in (20, 25) for s in range(4)]


def _task_pids() -> list[int]:
    """Processes (ours: the cluster's workers) that are running a training task now."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(TASK.encode()):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _kill_one_worker(killed: list, stop: threading.Event) -> None:
    while not stop.is_set():
        pids = _task_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
            return
        time.sleep(0.02)


def test_ray_sweep_survives_a_killed_worker_and_equals_local(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(cluster["data"]))
    runs.recipe._DATA.clear()
    specs = _specs()
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_one_worker, args=(killed, stop), daemon=True)
    killer.start()
    try:
        far = runs.sweep(specs, backend="ray", address=cluster["address"], cache=tmp_path / "ray", threads=1,
                         max_stack=2, progress=False)
    finally:
        stop.set()
        killer.join()
    assert killed, "no training task was seen running, so none was killed"
    store = cache.Store(tmp_path / "ray")
    assert sorted(store.keys()) == sorted(s.key for s in specs)
    assert all(store.validate(k) is None for k in store.keys())
    assert set(far["backend"]) == {"ray"} and (far["stack_size"] == 2).all() and not far["cached"].any()

    near = runs.sweep(specs, backend="local", cache=tmp_path / "local", threads=1, max_stack=2, progress=False)
    for a, b in zip(near["result"], far["result"]):
        assert a.key == b.key and a.metrics == b.metrics
        assert a._weights == b._weights  # the safetensors bytes: bitwise equal on CPU
        pd.testing.assert_frame_equal(a.history.drop(columns="seconds", errors="ignore"),
                                      b.history.drop(columns="seconds", errors="ignore"))

    again = runs.sweep(specs, backend="ray", address=cluster["address"], cache=tmp_path / "ray", progress=False)
    assert again["cached"].all()  # a driver that restarts finds every finished run in its cache


def test_worker_with_other_code_is_refused(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(cluster["data"]))
    monkeypatch.setattr(runs.fingerprint, "code_fingerprint", lambda: "0" * 16)  # the driver's code "differs"
    spec = _specs()[0]
    with pytest.raises(remote.FingerprintMismatch, match="code_fingerprint=.* is not valid; the driver's is '0{16}'"):
        runs.sweep([spec], backend="ray", address=cluster["address"], cache=tmp_path / "c", progress=False)
    assert cache.Store(tmp_path / "c").keys() == []
