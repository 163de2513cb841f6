"""A throwaway Redis (Debian's ``redis-server``) on a free loopback port, nothing persisted, for tests and
the local replica run. Never the Redis that may listen on 6379."""

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from servicekit.embedded import free_port, port_is_open

REDIS_SERVER = "/usr/bin/redis-server"


class RedisServer:
    def __init__(self, *, port: int | None = None, binary: str = REDIS_SERVER) -> None:
        self.port = port or free_port()
        self.binary = binary
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = Path(tempfile.mkdtemp(prefix="lsredis-"))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "RedisServer":
        command = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir)]
        # Nothing on disk, in the foreground, so stop() ends it.
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not port_is_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
