"""The launcher's promises: a component that cannot start fails loudly with its own
log, and no process outlives the control plane, not even when Python is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.cluster import REPO_ROOT, ClusterStartError, ControlPlane, Kube, wait_for

pytestmark = pytest.mark.integration


def _processes_under(workdir: Path) -> list[int]:
    """Live (non-zombie) processes whose command line names `workdir`: every
    component's does (data dir, certificates, kubeconfig)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(") ", 1)[1][0]
        except OSError:
            continue
        if str(workdir).encode() in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


def test_a_component_that_cannot_start_fails_loudly_and_cleans_up(
    kube: Kube, tmp_path: Path
) -> None:
    plane = ControlPlane(
        kube.testbin,
        tmp_path,
        extra_args={"kube-apiserver": ["--authorization-mode=NoSuchMode"]},
        start_timeout=60,
    )
    with pytest.raises(ClusterStartError) as failed:
        plane.start()
    message = str(failed.value)
    assert "kube-apiserver exited" in message
    assert "NoSuchMode" in message  # the apiserver's own words, from its log tail
    # etcd had to be healthy before the apiserver was started; it is gone too.
    assert _processes_under(tmp_path) == []


def test_no_component_outlives_a_killed_test_process(kube: Kube, tmp_path: Path) -> None:
    """Children die with the Python process that started them (parent-death signal)."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.append({str(REPO_ROOT)!r})
        from pathlib import Path
        from tests.support.cluster import ControlPlane, Testbin
        ControlPlane(Testbin(Path({str(kube.testbin.root)!r})), Path({str(tmp_path)!r})).start()
        print("started", flush=True)
        time.sleep(600)
        """
    )
    # -P: the repository root (whose operator/ would shadow the stdlib) is never sys.path[0].
    launcher = subprocess.Popen(
        [sys.executable, "-P", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert launcher.stdout is not None
        output = launcher.stdout.readline()
        assert output == "started\n", output + launcher.stdout.read()
        components = [pid for pid in _processes_under(tmp_path) if pid != launcher.pid]
        assert len(components) == 5  # etcd, apiserver, controller-manager, scheduler, kwok
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(10)
        wait_for(lambda: not _processes_under(tmp_path), 30, "the orphaned components to die")
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait(10)
        if launcher.stdout is not None:
            launcher.stdout.close()
