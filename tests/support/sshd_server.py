"""A real OpenSSH server on 127.0.0.1 for the remote-hardware tests.

`SshServer` writes a temporary host key, a client key and its authorized_keys line, and an
ssh_config that pins the host key, then runs ``sshd -D`` on a free port. Clients use
``ssh -F <config> <alias>``: nothing in the user's own ~/.ssh is read or changed.

`fake_nvml_env` makes a directory whose sitecustomize.py puts the tests' fake NVML (two GPUs)
in place of `pynvml` in every Python started with it on PYTHONPATH: that is how the remote
`lollma-tui monitor --jsonl` gets GPUs on a machine that has none.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
ALIAS = "gpu-box"
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lollma-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )


@dataclass
class SshServer:
    folder: Path
    port: int
    proc: subprocess.Popen[bytes]
    config: Path
    """ssh_config for clients: ``ssh -F config gpu-box``."""
    log: Path

    @property
    def options(self) -> tuple[str, ...]:
        return ("-F", str(self.config))

    def sessions(self) -> list[psutil.Process]:
        """Commands running in this server's sessions (its descendants that are not sshd)."""
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [p for p in children if _name(p) not in ("sshd", "sshd-session", "sshd-auth")]

    def wrong_key_config(self) -> Path:
        """A client config with a key the server does not know: login must fail."""
        other = self.folder / "other_key"
        if not other.exists():
            _keygen(other)
        text = self.config.read_text().replace(str(self.folder / "client_key"), str(other))
        path = self.folder / "ssh_config_wrong_key"
        path.write_text(text)
        return path


def _name(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return process.name()
    return ""


@contextlib.contextmanager
def running_sshd(folder: Path) -> Iterator[SshServer]:
    if not Path(SSHD).exists():
        raise RuntimeError("sshd is not installed: apt-get install openssh-server (see .ci/run)")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    host_key, client_key = folder / "host_key", folder / "client_key"
    _keygen(host_key)
    _keygen(client_key)
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    port = free_port()
    user = psutil.Process().username()
    config = folder / "sshd_config"
    config.write_text(
        textwrap.dedent(
            f"""\
            Port {port}
            ListenAddress 127.0.0.1
            HostKey {host_key}
            PidFile {folder / "sshd.pid"}
            AuthorizedKeysFile {folder / "authorized_keys"}
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            AllowUsers {user}
            UsePAM no
            StrictModes no
            PrintMotd no
            LogLevel VERBOSE
            """
        )
    )
    host_public = (folder / "host_key.pub").read_text().split()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_public[0]} {host_public[1]}\n")
    client_config = folder / "ssh_config"
    client_config.write_text(
        textwrap.dedent(
            f"""\
            Host {ALIAS}
                HostName 127.0.0.1
                Port {port}
                User {user}
                IdentityFile {client_key}
                IdentitiesOnly yes
                UserKnownHostsFile {folder / "known_hosts"}
                StrictHostKeyChecking yes
                LogLevel ERROR
            """
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation needs it
    log = folder / "sshd.log"
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for_port(port, proc, log)
        yield SshServer(folder, port, proc, client_config, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited ({proc.returncode}): {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on {port}: {log.read_text()[-2000:]}")


FAKE_NVML_SITE = """\
# Installed by the remote-hardware tests: the fake NVML with two GPUs replaces pynvml.
import importlib.util, sys
spec = importlib.util.spec_from_file_location("hw_fakes", {hw_fakes!r})
hw_fakes = importlib.util.module_from_spec(spec)
sys.modules["hw_fakes"] = hw_fakes
spec.loader.exec_module(hw_fakes)
fake = hw_fakes.FakeNvml([
    hw_fakes.FakeGpu(name="NVIDIA GeForce RTX 4090", bus_id="00000000:01:00.0"),
    hw_fakes.FakeGpu(name="NVIDIA GeForce RTX 3090", bus_id="00000000:02:00.0", util_gpu=12),
])
module = fake.module()
module.nvmlInitWithFlags = lambda flags: fake.nvmlInit()
sys.modules["pynvml"] = module
"""


def fake_nvml_env(folder: Path) -> Path:
    """A folder for PYTHONPATH whose sitecustomize installs the fake NVML with two GPUs."""
    hw_fakes = next(REPO.glob("tests/**/hw_fakes.py"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(FAKE_NVML_SITE.format(hw_fakes=str(hw_fakes)))
    return folder


def monitor_command(site: Path, interval_s: float) -> str:
    """The remote command: this checkout's lollma-tui, with the fake NVML at its import seam."""
    script = Path(sys.executable).with_name("lollma-tui")
    return f"env PYTHONPATH={site} {script} monitor --jsonl --interval {interval_s:g}"


QUIET_SSH_OPTIONS = (
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
)
"""For ssh to a `quiet_machine`: no host key to check, no prompt to wait on."""


@contextlib.contextmanager
def quiet_machine() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never speaks ssh: a machine gone quiet."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
