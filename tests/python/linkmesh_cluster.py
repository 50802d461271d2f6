"""Three real linkmesh nodes on loopback, started the way cluster-tests/harness.rs starts them.

Node 1 bootstraps (port 0 for HTTP and the cluster port; the bound addresses are read from its `cluster port
listening on` and `listening on` lines), nodes 2 and 3 join through node 1 with a join token minted by its API
(`POST /api/v1/cluster/join-tokens`, handed over in `LINKMESH_JOIN_TOKEN`, never a flag). A joined node prints its
addresses once it has caught up. The API is called with an admin service account's token, which is replicated
and therefore valid on every node. Every wait has a deadline; `stop()` terminates every node it started.
"""

import os
import pathlib
import queue
import subprocess
import threading
import time

import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "python-cluster-admin-password"
# Fast batching; a call bucket roomy enough for a client heartbeating every 200 ms; three voters.
CONFIG = """
activity_flush_interval = "30ms"
shutdown_timeout = "5s"

[collectors]
default_poll_interval = "5s"
min_poll_interval = "100ms"
stale_after_missed_polls = 5
tick_interval = "50ms"
passivate_after = "600s"
poll_burst = 20
polls_per_second = 20.0

[cluster]
max_voters = 3
"""
START_DEADLINE = 90
CONVERGE_DEADLINE = 60
SLOTS = 1024


def binary():
    return pathlib.Path(os.environ.get("LINKMESH_BIN", REPO / "target" / "debug" / "linkmesh"))


def wait_for(description, condition, deadline=CONVERGE_DEADLINE, logs=lambda: ""):
    until = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > until:
            raise AssertionError(f"timed out after {deadline}s waiting for {description}\n{logs()}")
        time.sleep(0.05)


class Node:
    def __init__(self, root: pathlib.Path, name: str):
        self.name = name
        self.dir = root / name
        self.dir.mkdir(parents=True)
        (self.dir / "linkmesh.toml").write_text(CONFIG)
        self.log_path = self.dir / "server.log"
        self.process = None
        self.base_url = None
        self.rpc_addr = None

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def start(self, join=None):
        env = dict(os.environ, LINKMESH_ADMIN_PASSWORD=ADMIN_PASSWORD, LINKMESH_LOG="info")
        env.pop("LINKMESH_DATA_KEY", None)
        env.pop("LINKMESH_JOIN_TOKEN", None)
        args = [str(binary()), "serve", "--config", str(self.dir / "linkmesh.toml"),
                "--data-dir", str(self.dir / "data"), "--http-addr", "127.0.0.1:0",
                "--rpc-addr", "127.0.0.1:0", "--node-name", self.name]
        if join:
            url, token = join
            args += ["--join", url]
            env["LINKMESH_JOIN_TOKEN"] = token
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(self.log_path, "a"),
                                        env=env, text=True)
        lines = queue.Queue()

        def drain():  # reads stdout to its end, so the node never blocks on a full pipe
            for line in self.process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, daemon=True).start()
        until = time.monotonic() + START_DEADLINE
        while True:
            try:
                line = lines.get(timeout=max(0.0, min(0.5, until - time.monotonic())))
            except queue.Empty:
                line = ""
            if line is None or self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.process.poll()}):\n{self.log()[-4000:]}")
            if line.startswith("cluster port listening on "):
                self.rpc_addr = line[len("cluster port listening on "):].strip()
            elif line.startswith("listening on "):
                self.base_url = "http://" + line[len("listening on "):].strip().split(",")[0].strip()
                return
            if time.monotonic() > until:
                self.kill()
                raise AssertionError(f"{self.name} did not start in {START_DEADLINE}s:\n{self.log()[-4000:]}")

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Api:
    """The admin service account's token against one node's REST API."""

    def __init__(self, base_url, token):
        self.base_url = base_url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, path, **kwargs):
        return self.http.request(method, f"{self.base_url}/api/v1{path}", timeout=20, **kwargs)

    def __call__(self, method, path, **kwargs):
        response = self.request(method, path, **kwargs)
        assert response.status_code < 300, f"{method} {self.base_url}{path}: {response.status_code} {response.text}"
        return response.json() if response.content else None


class Cluster:
    def __init__(self, root: pathlib.Path):
        self.root = root
        self.nodes = []
        self.token = None

    def logs(self):
        return "\n".join(f"--- {node.name} (tail) ---\n{node.log()[-3000:]}" for node in self.nodes)

    def api(self, index):
        """The admin API through node `index` (0-based)."""
        return Api(self.nodes[index].base_url, self.token)

    def start(self):
        first = Node(self.root, "node-1")
        self.nodes.append(first)
        first.start()
        session = requests.Session()
        login = session.post(f"{first.base_url}/api/v1/auth/login",
                             json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=20)
        assert login.status_code == 200, login.text
        account = session.post(f"{first.base_url}/api/v1/service-accounts",
                               json={"name": "python-cluster-test", "role": "admin"}, timeout=20)
        assert account.status_code == 201, account.text
        minted = session.post(f"{first.base_url}/api/v1/service-accounts/{account.json()['id']}/tokens",
                              json={"label": "tests/python"}, timeout=20)
        assert minted.status_code == 201, minted.text
        self.token = minted.json()["token"]
        for index in (2, 3):
            join = self.api(0)("POST", "/cluster/join-tokens", json={})["token"]
            node = Node(self.root, f"node-{index}")
            self.nodes.append(node)
            node.start(join=(first.base_url, join))
        self.wait_spread()
        return self

    def member_ids(self):
        members = self.api(0)("GET", "/cluster")["members"]
        return sorted(member["id"] for member in members)

    def wait_spread(self):
        """Until every node shows three members and all 1024 slots spread evenly over them (no slot moves
        while the test runs)."""

        def even_everywhere():
            ids = self.member_ids()
            if len(ids) != 3:
                return False
            for index in range(3):
                response = self.api(index).request("GET", "/cluster/slots")
                if response.status_code != 200:
                    return False
                slots = response.json()["slots"]
                counts = {owner: 0 for owner in ids}
                for entry in slots:
                    if entry["owner"] not in counts:
                        return False
                    counts[entry["owner"]] += 1
                if len(slots) != SLOTS or min(counts.values()) == 0 or max(counts.values()) - min(counts.values()) > 1:
                    return False
            return True

        wait_for("three members and the slots spread evenly on every node", even_everywhere, logs=self.logs)

    def stop(self):
        for node in reversed(self.nodes):
            node.stop()
