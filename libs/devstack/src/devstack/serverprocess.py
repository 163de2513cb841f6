"""What the local test servers (pgbouncer, redis-server) share: a foreground process on a loopback port, with
a scratch directory, waited for until it listens and ended (then the directory removed) on stop."""

import shutil
import subprocess
import time
from pathlib import Path
from typing import Self

from devstack.embedded import port_is_open


class ServerProcess:
    name = "server"

    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.dir = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def _wait_until_listening(self, log: Path | None = None, timeout_s: float = 15) -> None:
        """Return once the port accepts connections; stop and raise (with the log's tail) if the process ends
        or the time runs out first."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while not port_is_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (
                    None if log is None else log.read_text(errors="replace")[-2000:] if log.exists() else ""
                )
                self.stop()
                detail = f":\n{tail}" if tail is not None else ""
                raise RuntimeError(f"{self.name} did not start on {self.port}{detail}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
