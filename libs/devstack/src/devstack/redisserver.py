"""A throwaway Redis (Debian's ``redis-server``) on a free loopback port, nothing persisted, for tests and
the local replica run. Never the Redis that may listen on 6379."""

import subprocess
import tempfile
from pathlib import Path

from devstack.embedded import free_port
from devstack.serverprocess import ServerProcess

REDIS_SERVER = "/usr/bin/redis-server"


class RedisServer(ServerProcess):
    name = "redis-server"

    def __init__(self, *, port: int | None = None, binary: str = REDIS_SERVER) -> None:
        super().__init__(port or free_port(), Path(tempfile.mkdtemp(prefix="lsredis-")))
        self.binary = binary
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.dir.mkdir(parents=True, exist_ok=True)  # stop() removes it; a stopped server may start again
        command = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir)]
        # Nothing on disk, in the foreground, so stop() ends it.
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_until_listening()
        return self
