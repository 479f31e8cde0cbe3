"""Sandbox tests: hazardous programs end as failures, in time, and leave nothing behind.

Each hazard runs twice where it can: with the guard (how evaluation runs) and with ``guard=False``
to show the OS-level layer holds on its own. The second kind runs only where ``isolation()`` says
that layer exists on this machine (a separate uid, a network namespace); otherwise it is skipped,
because without it a real fork bomb or a real kill could reach the machine.

After every run: the child's process group and uid have no live process, the temporary
directory is gone, the test process and a sentinel process are alive, and files a hazard aimed
at outside its directory do not exist (or still exist, for deletions).
"""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from trainer.eval.sandbox import STATUSES, SandboxResult, isolation, run_python

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 2.0
SLACK = 5.0  # start-up, killing and reaping, on a busy 2-core machine


def _live_processes(result: SandboxResult) -> list[str]:
    """Processes still alive in the sandbox's process group or running as its uid."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            status = Path(f"/proc/{entry.name}/status").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp ...
        state, pgrp = fields[0], int(fields[2])
        uid = int(status.split("\nUid:", 1)[1].split()[0])
        if state in ("Z", "X"):
            continue
        if pgrp == result.pid or (result.uid is not None and uid == result.uid):
            found.append(f"{entry.name} state={state} pgrp={pgrp} uid={uid}")
    return found


def _run(code: str, **kwargs) -> SandboxResult:
    kwargs.setdefault("timeout_s", TIMEOUT)
    started = time.monotonic()
    result = run_python(textwrap.dedent(code), **kwargs)
    elapsed = time.monotonic() - started
    assert result.status in STATUSES
    assert elapsed < kwargs["timeout_s"] + SLACK, f"took {elapsed:.1f}s: {result}"
    assert _live_processes(result) == [], "processes left behind"
    assert not os.path.exists(result.workdir), "temporary directory left behind"
    return result


@pytest.fixture
def sentinel():
    """An innocent process outside the sandbox that hazards try to kill."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc
    assert proc.poll() is None, "the sentinel process was killed"
    proc.kill()
    proc.wait()


@pytest.fixture
def outside_target():
    """A path in the repository (outside any sandbox directory) that must never be created."""
    path = REPO / f".sandbox-escape-{uuid.uuid4().hex}"
    yield path
    created = path.exists()
    if created:
        path.unlink()
    assert not created, f"a sandboxed program wrote {path}"


def _needs(layer: str):
    iso = isolation()
    if not getattr(iso, layer):
        pytest.skip(f"this machine has no {layer} for sandboxed programs ({iso.describe()})")


# --- ordinary outcomes -----------------------------------------------------------------------


def test_outcomes_are_classified():
    assert _run("print('hello')").status == "passed"
    ok = _run("print('hello')")
    assert ok.passed and ok.stdout == "hello\n" and ok.returncode == 0

    failed = _run("assert 1 + 1 == 3, 'arithmetic'")
    assert (failed.status, failed.detail) == ("failed", "AssertionError: arithmetic")
    assert not failed.passed

    assert _run("x = undefined_name").detail == "NameError: name 'undefined_name' is not defined"
    assert _run("def f(:\n  pass").status == "error"
    exited = _run("import sys\nsys.exit(0)\nassert False")
    assert exited.status == "exited" and not exited.passed  # leaving early is not passing


def test_installed_packages_import_but_no_pth_file_runs():
    """The sandbox starts with -S: site-packages are on the path, their .pth start-up hooks are not run."""
    program = textwrap.dedent("""
        import sys
        import numpy
        assert numpy.zeros(3).sum() == 0
        assert not any("__editable__" in name for name in sys.modules), "a .pth hook ran"
        assert "site" not in sys.modules
    """)
    result = _run(program)
    assert result.status == "passed", (result.status, result.detail, result.stderr[-500:])


def test_work_inside_the_temporary_directory_is_allowed():
    result = _run(
        """
        import os, shutil, tempfile, pathlib
        home = os.getcwd()
        assert os.environ["HOME"] == home and tempfile.gettempdir() == home
        pathlib.Path("a/b").mkdir(parents=True)
        open("a/b/f.txt", "w").write("data")
        shutil.copy("a/b/f.txt", "g.txt")
        os.rename("g.txt", "h.txt")
        with tempfile.NamedTemporaryFile() as f:
            f.write(b"x")
        shutil.rmtree("a")
        os.remove("h.txt")
        print(sorted(os.listdir(".")))
        """
    )
    assert result.passed, result.stderr
    assert result.stdout.strip() == "['program.py']"


# --- the six hazards, with the guard ---------------------------------------------------------


def test_infinite_loop_times_out():
    result = _run("while True:\n    pass")
    assert result.status == "timeout"
    assert TIMEOUT <= result.seconds < TIMEOUT + SLACK


def test_sleeping_forever_times_out():
    result = _run("import time\ntime.sleep(3600)")
    assert result.status == "timeout"


def test_cpu_limit_stops_a_busy_loop_before_the_wall_clock():
    result = _run("while True:\n    pass", timeout_s=30, cpu_s=1)
    assert result.status == "timeout" and "CPU" in result.detail
    assert result.seconds < 30


def test_fork_bomb_is_refused(sentinel):
    result = _run(
        """
        import os
        while True:
            os.fork()
        """
    )
    assert result.status == "blocked" and "os.fork" in result.detail
    result = _run("import subprocess\nsubprocess.Popen(['sleep', '100'])")
    assert result.status == "blocked"
    result = _run("import multiprocessing\nmultiprocessing.Process(target=print).start()")
    assert result.status == "blocked"


def test_ten_gigabyte_allocation_fails_with_memory_error():
    result = _run("x = bytearray(10 * 1024 ** 3)\nx[-1] = 1")
    assert result.status == "memory" and result.detail.startswith("MemoryError")
    # Growing step by step stops at the limit too, long before 10 GB.
    result = _run(
        """
        chunks = []
        for _ in range(100):
            chunks.append(bytearray(100 * 1024 ** 2))
        """,
        memory_mb=512,
    )
    assert result.status == "memory"


def test_writing_outside_the_temporary_directory_is_refused(outside_target, tmp_path):
    keep = tmp_path / "keep.txt"
    keep.write_text("precious")
    hazards = [
        f"open({str(outside_target)!r}, 'w').write('x')",
        f"import pathlib\npathlib.Path({str(outside_target)!r}).write_text('x')",
        f"import os\nos.open({str(outside_target)!r}, os.O_CREAT | os.O_WRONLY)",
        f"import os\nos.symlink({str(outside_target)!r}, 'link')\nopen('link', 'w').write('x')",
        f"import os\nos.remove({str(keep)!r})",
        f"import shutil\nshutil.rmtree({str(tmp_path)!r})",
        f"import os\nos.rename({str(keep)!r}, 'stolen.txt')",
        f"import os\nos.chdir('..')\nopen({outside_target.name!r}, 'w').write('x')",
    ]
    for code in hazards:
        result = _run(code)
        # The guard refuses ("blocked"), or the kernel first: with no capability the sandbox uid
        # cannot even list a 0700 directory (rmtree's scandir gets EACCES).
        refused_by_kernel = result.status == "error" and result.detail.startswith("PermissionError")
        assert result.status == "blocked" or refused_by_kernel, (code, result)
    assert keep.read_text() == "precious"


def test_network_is_refused():
    for code in [
        "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)",
        "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
        "import _socket\n_socket.socket()",
        "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=1)",
    ]:
        result = _run(code)
        assert not result.passed, code
        assert "sandbox:" in result.stderr, code


def test_killing_the_parent_and_others_is_refused(sentinel):
    for code in [
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
        "import os, signal\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)",
        f"import os, signal\nos.kill({sentinel.pid}, signal.SIGKILL)",
        "import os, signal\nos.kill(-1, signal.SIGKILL)",
        "import os\nos.system('kill -9 %d' % os.getppid())",
    ]:
        result = _run(code)
        assert result.status == "blocked", (code, result)
    assert os.getpid() and sentinel.poll() is None


def test_output_is_capped():
    result = _run("print('x' * 10_000_000)", max_output_bytes=4096)
    assert result.status == "output_limit" and result.output_truncated
    assert len(result.stdout) <= 4096


# --- the same hazards against the OS-level layer alone (guard=False) ---------------------------


def test_os_layer_contains_a_fork_bomb():
    _needs("nproc_enforced")
    _needs("separate_uid")
    result = _run(
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """,
        guard=False,
        max_processes=16,
    )
    assert result.status == "timeout"


def test_os_layer_kills_a_child_that_left_the_process_group():
    _needs("separate_uid")
    result = _run(
        """
        import os, time
        if os.fork() == 0:
            os.setsid()
            time.sleep(600)
        """,
        guard=False,
    )
    assert result.status == "passed"  # the program itself ended; _run checks nothing is left


def test_os_layer_refuses_writes_outside(outside_target, tmp_path):
    _needs("separate_uid")
    keep = tmp_path / "keep.txt"
    keep.write_text("precious")
    refused = ("PermissionError", "Read-only file system")  # other uid; and the read-only mount namespace
    result = _run(f"open({str(outside_target)!r}, 'w').write('x')", guard=False)
    assert result.status == "error" and any(r in result.detail for r in refused)
    result = _run(f"import os\nos.remove({str(keep)!r})", guard=False)
    assert result.status == "error" and any(r in result.detail for r in refused)
    assert keep.read_text() == "precious"


def test_os_layer_refuses_signals_to_other_processes(sentinel):
    _needs("separate_uid")
    result = _run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", guard=False)
    assert result.status == "error" and "PermissionError" in result.detail
    result = _run(f"import os, signal\nos.kill({sentinel.pid}, signal.SIGKILL)", guard=False)
    assert result.status == "error"
    # kill(-1) reaches only processes of the sandbox uid.
    result = _run("import os, signal\nos.kill(-1, signal.SIGKILL)\nprint('still here')", guard=False)
    assert result.passed and result.stdout == "still here\n"


def test_os_layer_has_no_network():
    _needs("network_namespace")
    # Not even the parent's loopback: a server listening here is unreachable from the sandbox.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0)
        port = server.getsockname()[1]
        result = _run(
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)", guard=False
        )
        # no route (network namespace), or no socket at all (seccomp, where it holds)
        refused = ("unreachable", "permission denied")
        assert result.status == "error" and any(r in result.detail.lower() for r in refused), result
        with pytest.raises(BlockingIOError):
            server.accept()
    result = _run("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)", guard=False)
    assert result.status == "error" and any(r in result.detail.lower() for r in refused)


def test_os_layer_memory_limit():
    result = _run("x = bytearray(10 * 1024 ** 3)", guard=False)
    assert result.status == "memory"


def test_os_layer_wall_clock_kills_the_whole_group():
    _needs("separate_uid")
    result = _run(
        """
        import os, time
        os.fork()
        while True:
            time.sleep(0.01)
        """,
        guard=False,
    )
    assert result.status == "timeout"


def test_isolation_probe_is_consistent():
    iso = isolation()
    # RLIMIT_NPROC binds every uid but root; a root parent gets it by giving the child its own uid.
    assert iso.nproc_enforced == (iso.separate_uid or os.geteuid() != 0)
    if os.geteuid() != 0:
        assert not iso.separate_uid
