"""A real Kubernetes control plane for the tests, on loopback only.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake
nodes whose pods really go Pending -> Running/Ready -> Succeeded) run as child
processes, each in its own process group, with data and logs in one work
directory. The binaries come from tests/cluster/build.sh, which builds them
from the official Go modules into a cache outside the repository.

What this room guarantees:
- Every component listens on 127.0.0.1 only, on free ports.
- The apiserver's own traffic towards "the cluster" (service/pod proxy,
  kubelet logs/exec, webhooks, aggregated APIs) goes through a CONNECT guard
  that lets loopback targets through and refuses every other address, so no
  test can make it reach a fake pod IP. Fake nodes advertise 127.0.0.1.
- The apiserver writes an audit log of every write request (who, verb, object,
  answer; no reads), which `Kube.audit_writes` reads back for tests that count
  writes or check who made them.
- A failed start raises `ClusterStartError` with the failing component's log
  tail and stops whatever had started; `stop()` leaves no process behind, and
  children get SIGKILL if the Python process dies without stopping them.

Plain Python: no pytest here (the fixture lives in plugin_cluster.py).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import functools
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.procs import Process, free_port, log_tail

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "tests" / "cluster" / "build.sh"

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"  # only ever written into pod status by kwok; never dialled
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
FIELD_MANAGER = "seaway-tests"
ADMIN_USER = "seaway-test-admin"
"""The user name the API server (and its audit log) gives the admin kubeconfig."""


class ClusterStartError(RuntimeError):
    """The control plane (or the build of its binaries) did not come up."""


class KubectlError(RuntimeError):
    """kubectl (or helm) exited non-zero; the message carries its stderr."""

    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(f"{' '.join(args)} exited {result.returncode}:\n{result.stderr.strip()}")
        self.result = result


# --- binaries -----------------------------------------------------------------


@dataclass(frozen=True)
class Testbin:
    """One built cache entry of tests/cluster/build.sh."""

    root: Path

    def bin(self, name: str) -> Path:
        return self.root / "bin" / name

    @property
    def kserve_crds(self) -> Path:
        return self.root / "crds" / "kserve"

    @property
    def kwok_stages(self) -> Path:
        return self.root / "kwok-stages"

    @property
    def versions(self) -> dict[str, str]:
        lines = (self.root / "versions.txt").read_text().splitlines()
        return dict(line.split(" ", 1) for line in lines if line.strip())


def ensure_testbin(timeout: float = 3600) -> Testbin:
    """Build (first time: tens of minutes) or reuse (seconds) the binaries.

    `SEAWAY_TESTBIN_DIR` may name a finished cache entry to use as is.
    """
    if given := os.environ.get("SEAWAY_TESTBIN_DIR"):
        return Testbin(Path(given))
    try:
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ClusterStartError(f"{BUILD_SCRIPT} did not finish in {timeout:.0f}s") from exc
    if result.returncode != 0 or not result.stdout.strip():
        tail = "\n".join(result.stderr.splitlines()[-60:])
        raise ClusterStartError(f"{BUILD_SCRIPT} failed ({result.returncode}):\n{tail}")
    return Testbin(Path(result.stdout.strip().splitlines()[-1]))


# --- PKI ----------------------------------------------------------------------


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str, orgs: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class _Issued:
    cert: Path
    key: Path


class _Pki:
    """A throwaway CA and the certificates the components and clients need."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._ca_key = _new_key()
        now = dt.datetime.now(dt.UTC)
        self._not_before = now - dt.timedelta(minutes=5)
        self._not_after = now + dt.timedelta(days=2)
        subject = _name("seaway-test-ca")
        self._ca_cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._not_before)
            .not_valid_after(self._not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._ca_key.public_key()),
                critical=False,
            )
            .sign(self._ca_key, hashes.SHA256())
        )  # fmt: skip
        self.ca = _Issued(directory / "ca.crt", directory / "ca.key")
        self.ca.cert.write_bytes(self._ca_cert.public_bytes(serialization.Encoding.PEM))
        _write_key(self.ca.key, self._ca_key)

        # Service-account token signing pair (ECDSA is accepted by both sides).
        sa_key = _new_key()
        self.sa_key = directory / "sa.key"
        self.sa_pub = directory / "sa.pub"
        _write_key(self.sa_key, sa_key)
        self.sa_pub.write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def issue(
        self,
        name: str,
        common_name: str,
        *,
        orgs: Iterable[str] = (),
        dns: Iterable[str] = (),
        ips: Iterable[str] = (),
        server: bool = False,
    ) -> _Issued:
        key = _new_key()
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, orgs))
            .issuer_name(self._ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._not_before)
            .not_valid_after(self._not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()),
                critical=False,
            )
        )
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        issued = _Issued(self.dir / f"{name}.crt", self.dir / f"{name}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(issued.key, key)
        return issued


def _write_kubeconfig(
    path: Path, server: str, ca: Path, user: str, credentials: Mapping[str, str]
) -> None:
    """Kubeconfig is YAML, and JSON is YAML: no YAML library needed here.
    `credentials` is the kubeconfig `user:` entry (client certificate, or token)."""
    cluster = {"server": server, "certificate-authority": str(ca)}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "seaway-test", "cluster": cluster}],
        "users": [{"name": user, "user": dict(credentials)}],
        "contexts": [{"name": "seaway-test", "context": {"cluster": "seaway-test", "user": user}}],
        "current-context": "seaway-test",
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


# --- the loopback egress guard ---------------------------------------------------


class _LoopbackEgressGuard:
    """HTTP CONNECT proxy on a unix socket, used as the apiserver's "cluster" egress.

    Tunnels to loopback addresses (so a webhook or a kubelet on 127.0.0.1 still
    works) and answers 403 to anything else, recording what it refused.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.refused: list[str] = []
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, name="kube-egress-guard", daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            still_open, self._open = self._open, set()
        for sock in still_open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while (listener := self._listener) is not None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.update(socks)

    def _serve(self, conn: socket.socket) -> None:
        self._track(conn)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 16384:
            chunk = conn.recv(4096)
            if not chunk:
                conn.close()
                return
            head += chunk
        header, _, rest = head.partition(b"\r\n\r\n")
        parts = header.split(b"\r\n", 1)[0].decode("latin-1").split()
        target = parts[1] if len(parts) == 3 and parts[0] == "CONNECT" else ""
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        if not (port.isdigit() and _is_loopback(host)):
            self.refused.append(target or header[:80].decode("latin-1"))
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            conn.close()
            return
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except OSError:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            conn.close()
            return
        upstream.settimeout(None)
        self._track(upstream)
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
        threading.Thread(target=_pump, args=(upstream, conn), daemon=True).start()
        _pump(conn, upstream)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


class _Credentials:
    """Every certificate and kubeconfig one control plane needs."""

    def __init__(self, work: Path, server: str) -> None:
        self.server = server
        self.pki = pki = _Pki(work / "pki")
        self.loopback_serving = pki.issue(
            "loopback-serving", "127.0.0.1", dns=["localhost"], ips=["127.0.0.1"], server=True
        )
        kubernetes_service_ip = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))
        self.apiserver_serving = pki.issue(
            "apiserver",
            "kube-apiserver",
            dns=[
                "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            ips=["127.0.0.1", kubernetes_service_ip],
            server=True,
        )  # fmt: skip
        self.clients = {
            "admin": pki.issue("admin", ADMIN_USER, orgs=["system:masters"]),
            "kube-controller-manager": pki.issue("kcm", "system:kube-controller-manager"),
            "kube-scheduler": pki.issue("scheduler", "system:kube-scheduler"),
            # kwok writes node and pod status, leases and events: simplest as an admin.
            "kwok": pki.issue("kwok", "kwok-controller", orgs=["system:masters"]),
        }
        self.kubeconfigs = {}
        for user, issued in self.clients.items():
            self.kubeconfigs[user] = work / f"{user}.kubeconfig"
            credentials = {"client-certificate": str(issued.cert), "client-key": str(issued.key)}
            _write_kubeconfig(self.kubeconfigs[user], server, pki.ca.cert, user, credentials)
        self.admin_tls = ssl.create_default_context(cafile=str(pki.ca.cert))
        admin = self.clients["admin"]
        self.admin_tls.load_cert_chain(str(admin.cert), str(admin.key))


def _egress_selector(guard_socket: Path) -> dict[str, Any]:
    """The apiserver reaches "the cluster" only through the loopback guard."""
    return {
        "apiVersion": "apiserver.k8s.io/v1beta1",
        "kind": "EgressSelectorConfiguration",
        "egressSelections": [
            {
                "name": "cluster",
                "connection": {
                    "proxyProtocol": "HTTPConnect",
                    "transport": {"uds": {"udsName": str(guard_socket)}},
                },
            }
        ],
    }


AUDIT_LOG = "kube-apiserver-audit.jsonl"
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")

# Who writes on a timer or narrates what they do: their leases, node heartbeats and
# Events would bury the writes a test counts. Everything else they write stays.
_SYSTEM_USERS = (
    "system:apiserver",
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "kwok-controller",
)
_CONTROLLER_SERVICE_ACCOUNTS = "system:serviceaccounts:kube-system"


def _audit_policy() -> dict[str, Any]:
    """Metadata-level audit of every write, once per request when its answer is
    complete; reads are not logged at all (the default for a request no rule
    matches is level None)."""
    leases = [{"group": "coordination.k8s.io", "resources": ["leases"]}]
    nodes = [{"group": "", "resources": ["nodes", "nodes/*"]}]
    events = [
        {"group": "", "resources": ["events"]},
        {"group": "events.k8s.io", "resources": ["events"]},
    ]
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "users": list(_SYSTEM_USERS), "resources": leases},
            {"level": "None", "users": ["kwok-controller"], "resources": nodes},
            {"level": "None", "users": list(_SYSTEM_USERS), "resources": events},
            {"level": "None", "userGroups": [_CONTROLLER_SERVICE_ACCOUNTS], "resources": events},
            {"level": "Metadata", "verbs": list(WRITE_VERBS)},
        ],
    }


# --- fake nodes -----------------------------------------------------------------


@dataclass(frozen=True)
class FakeNode:
    """A node kwok keeps alive (heartbeats, lease) and runs pods on, on paper."""

    name: str
    cpu: str = "16"
    memory: str = "64Gi"
    pods: int = 110
    gpus: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Mapping[str, str]] = ()

    def manifest(self, kubelet_version: str = "fake") -> dict[str, Any]:
        capacity = {"cpu": self.cpu, "memory": self.memory, "pods": str(self.pods)}
        if self.gpus:
            capacity[GPU_RESOURCE] = str(self.gpus)
        labels = {
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/os": "linux",
            "kubernetes.io/hostname": self.name,
            "type": "kwok",
            **self.labels,
        }
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": labels,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            },
            "spec": {"taints": [dict(t) for t in self.taints]},
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "addresses": [
                    {"type": "InternalIP", "address": "127.0.0.1"},
                    {"type": "Hostname", "address": self.name},
                ],
                "nodeInfo": {
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                    "kubeletVersion": kubelet_version,
                    "containerRuntimeVersion": "kwok",
                },
            },
        }


DEFAULT_NODES: tuple[FakeNode, ...] = (
    FakeNode("kwok-node-0"),
    FakeNode(
        "kwok-gpu-0",
        memory="128Gi",
        gpus=2,
        labels={"nvidia.com/gpu.present": "true"},
        taints=(GPU_TAINT,),
    ),
)


# --- the handle tests get ----------------------------------------------------------


def service_account_user(namespace: str, name: str) -> str:
    """The user name the API server gives a ServiceAccount's token."""
    return f"system:serviceaccount:{namespace}:{name}"


@dataclass(frozen=True)
class AuditWrite:
    """One write the API server answered, as its audit log records it.

    `time` is when the answer was complete (the event's stageTimestamp, UTC).
    `user` is the effective user: the impersonated one where a request used
    impersonation. `name` is empty for a create by generateName (the API server
    logs the request before it picks the name) and for deletecollection.
    `subresource` is e.g. "status", else empty. `code` is the HTTP status
    answered, so refused writes (403, 409, 422) are here too.
    """

    time: dt.datetime
    user: str
    verb: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> AuditWrite:
        """From one audit.k8s.io/v1 Event (as the json log format writes it)."""
        user = event.get("impersonatedUser") or event.get("user") or {}
        ref = event.get("objectRef") or {}
        return cls(
            time=dt.datetime.fromisoformat(event["stageTimestamp"]),
            user=user.get("username", ""),
            verb=event["verb"],
            resource=ref.get("resource", ""),
            subresource=ref.get("subresource", ""),
            namespace=ref.get("namespace", ""),
            name=ref.get("name", ""),
            code=int((event.get("responseStatus") or {}).get("code", 0)),
        )


def read_audit_writes(path: Path) -> list[AuditWrite]:
    """Every write in an audit log, oldest first.

    The API server may be halfway through appending a line: a last line without
    its newline is left for the next read. Any other line that is not an event
    is an error, not something to skip.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    # After the last newline: "" when the file ends cleanly, else a line being written.
    complete = lines[:-1]
    writes = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number} is not an audit event: {line[:200]!r}") from exc
        if event.get("stage") == "ResponseComplete" and event.get("verb") in WRITE_VERBS:
            writes.append(AuditWrite.from_event(event))
    return writes


@dataclass(frozen=True)
class Kube:
    """What a test needs to talk to the running control plane.

    `admin_user` is who the admin kubeconfig (and `api_client()`) acts as, in
    the audit log; `audit_log` holds every write (see `audit_writes`).
    """

    kubeconfig: Path
    server: str
    ca_file: Path
    admin_cert: Path
    admin_key: Path
    workdir: Path
    testbin: Testbin
    nodes: tuple[FakeNode, ...]
    logs: Mapping[str, Path]
    egress_refused: list[str]
    admin_user: str
    audit_log: Path

    def env(self) -> dict[str, str]:
        """Environment for a CLI (kubectl, helm) aimed at this cluster, isolated from ~."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECACHEDIR": str(self.workdir / "kubectl-cache"),
            "HELM_CACHE_HOME": str(self.workdir / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(self.workdir / "helm" / "config"),
            "HELM_DATA_HOME": str(self.workdir / "helm" / "data"),
        }

    def _run(
        self, tool: str, args: Sequence[str], input: str | None, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.testbin.bin(tool)), *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError([tool, *args], result)
        return result

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this cluster; raises `KubectlError` if `check`."""
        return self._run("kubectl", args, input, check, timeout)

    def helm(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run the built helm against this cluster (its own cache/config dirs)."""
        return self._run("helm", args, input, check, timeout)

    def api_client(self, token: str | None = None) -> ApiClient:
        """A `kubernetes` ApiClient: cluster admin, or the bearer `token` (e.g. a
        ServiceAccount's). Close it (it is a context manager) when done."""
        from kubernetes import client

        config = client.Configuration()
        config.host = self.server
        config.ssl_ca_cert = str(self.ca_file)
        if token is None:
            config.cert_file = str(self.admin_cert)
            config.key_file = str(self.admin_key)
        else:
            config.api_key = {"authorization": token}
            config.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(config)

    def log_tail(self, component: str, lines: int = 60) -> str:
        return log_tail(self.logs[component], lines)

    def audit_writes(
        self,
        *,
        user: str | None = None,
        since: dt.datetime | None = None,
        namespace: str | None = None,
    ) -> list[AuditWrite]:
        """The writes the API server answered, oldest first, from its audit log.

        Reads are never logged. Left out by the policy: leases and Events of the
        control plane's own components, and kwok's node heartbeats; writes of every
        other user and ServiceAccount are here, refused ones included (see `code`).
        The log is written before each answer leaves the API server, so a write a
        client saw answered is here already.

        `user`: e.g. `admin_user` or `service_account_user(ns, name)`. `since`: a
        timezone-aware time; writes answered at or after it. `namespace`: writes of
        objects in it (a Namespace itself counts as in its own namespace).
        """
        if since is not None and since.utcoffset() is None:
            raise ValueError("since must be timezone-aware (e.g. datetime.now(UTC))")
        return [
            write
            for write in read_audit_writes(self.audit_log)
            if (user is None or write.user == user)
            and (since is None or write.time >= since)
            and (namespace is None or write.namespace == namespace)
        ]

    def kubeconfig_for_token(self, token: str, path: Path) -> Path:
        """Write a kubeconfig for this cluster that authenticates with the bearer
        `token` (e.g. a ServiceAccount's, from `service_account_token`), so a
        subprocess given KUBECONFIG=path runs as that account. Returns `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_kubeconfig(path, self.server, self.ca_file, "token", {"token": token})
        return path

    def create_service_account(
        self,
        namespace: str,
        name: str,
        rules: Sequence[Mapping[str, Any]] | None = None,
        *,
        cluster_wide: bool = False,
    ) -> str:
        """Create (or update) the ServiceAccount `namespace/name` and, given `rules`,
        bind it to exactly them: a Role and RoleBinding named `name` in `namespace`,
        or with `cluster_wide` a ClusterRole and ClusterRoleBinding named
        `namespace:name` (not removed with the namespace). Applying again replaces
        the rules. Returns the account's user name, as the audit log writes it."""
        subject = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
        items: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": name, "namespace": namespace}},
        ]  # fmt: skip
        if rules is not None:
            kind = "ClusterRole" if cluster_wide else "Role"
            metadata = (
                {"name": f"{namespace}:{name}"}
                if cluster_wide
                else {"name": name, "namespace": namespace}
            )
            rbac = "rbac.authorization.k8s.io"
            items += [
                {"apiVersion": f"{rbac}/v1", "kind": kind, "metadata": metadata,
                 "rules": [dict(rule) for rule in rules]},
                {"apiVersion": f"{rbac}/v1", "kind": f"{kind}Binding", "metadata": metadata,
                 "roleRef": {"apiGroup": rbac, "kind": kind, "name": metadata["name"]},
                 "subjects": [subject]},
            ]  # fmt: skip
        self.kubectl(
            "apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}",
            "-f", "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        )  # fmt: skip
        return service_account_user(namespace, name)

    def service_account_token(
        self, namespace: str, name: str, *, duration: dt.timedelta = dt.timedelta(hours=1)
    ) -> str:
        """A fresh bearer token of the existing ServiceAccount `namespace/name`
        (a TokenRequest; nothing is stored in the cluster)."""
        seconds = int(duration.total_seconds())
        created = self.kubectl("create", "token", name, "-n", namespace, f"--duration={seconds}s")
        return created.stdout.strip()


# --- the control plane ------------------------------------------------------------


def _die_with_parent() -> list[str]:
    """Prefix that makes a child die with us even if we are SIGKILLed."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL"] if setpriv else []


class ControlPlane:
    """Starts and stops one control plane. `start()` returns the `Kube` handle.

    `crd_paths` (files or directories of YAML) are applied server-side after the
    control plane is up, and waited for until Established. `extra_args` adds
    flags per component name ("kube-apiserver": ["--feature-gates=..."]).
    """

    def __init__(
        self,
        testbin: Testbin,
        workdir: Path,
        *,
        nodes: Sequence[FakeNode] = DEFAULT_NODES,
        crd_paths: Sequence[Path] = (),
        extra_args: Mapping[str, Sequence[str]] | None = None,
        start_timeout: float = 180,
    ) -> None:
        self.testbin = testbin
        self.extra_args = {name: list(args) for name, args in (extra_args or {}).items()}
        self.workdir = workdir
        self.nodes = tuple(nodes)
        self.crd_paths = tuple(crd_paths)
        self.start_timeout = start_timeout
        self._procs: dict[str, Process] = {}
        self._guard: _LoopbackEgressGuard | None = None
        self._kube: Kube | None = None
        # Stops the children at interpreter exit if nobody called stop() (registered
        # while running). Not tied to this object's lifetime: a caller may keep only
        # the Kube handle.
        self._at_exit = functools.partial(_stop_all, self._procs)

    # public ------------------------------------------------------------------

    def start(self) -> Kube:
        for name in (
            "kube-apiserver",
            "etcd",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
            "kubectl",
        ):
            if not self.testbin.bin(name).is_file():
                raise ClusterStartError(f"missing {self.testbin.bin(name)}: run {BUILD_SCRIPT}")
        atexit.register(self._at_exit)
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                self._kube = self._start_once()
                return self._kube
            except BaseException as exc:
                self.stop()
                # Another process may take a port between free_port() and bind: try again.
                if attempt == attempts or "address already in use" not in str(exc):
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop everything that runs, newest first; idempotent."""
        _stop_all(self._procs)
        atexit.unregister(self._at_exit)
        if self._guard is not None:
            self._guard.stop()
            self._guard = None
        # etcd's data is the bulk of the work dir and worth nothing after the run.
        shutil.rmtree(self.workdir / "etcd", ignore_errors=True)

    def __enter__(self) -> Kube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # internals ----------------------------------------------------------------

    def _start_once(self) -> Kube:
        work = self.workdir
        for sub in ("pki", "logs", "etcd", "kwok-home", "certs"):
            shutil.rmtree(work / sub, ignore_errors=True)
            (work / sub).mkdir(parents=True)
        api_port = free_port()
        creds = _Credentials(work, f"https://127.0.0.1:{api_port}")
        self._guard = _LoopbackEgressGuard(work / "egress.sock")
        self._guard.start()

        etcd_url = self._start_etcd()
        self._start_apiserver(creds, etcd_url, api_port)
        self._start_controllers(creds)
        self._add_nodes(_Api("127.0.0.1", api_port, creds.admin_tls))

        kube = Kube(
            kubeconfig=creds.kubeconfigs["admin"],
            server=creds.server,
            ca_file=creds.pki.ca.cert,
            admin_cert=creds.clients["admin"].cert,
            admin_key=creds.clients["admin"].key,
            workdir=work,
            testbin=self.testbin,
            nodes=self.nodes,
            logs={name: proc.log for name, proc in self._procs.items()},
            egress_refused=self._guard.refused,
            admin_user=ADMIN_USER,
            audit_log=work / "logs" / AUDIT_LOG,
        )
        self._install_crds(kube)
        return kube

    def _start_etcd(self) -> str:
        port, peer_port = free_port(), free_port()
        url, peer_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer_port}"
        etcd = self._spawn(
            "etcd",
            [
                "--name", "seaway-test",
                "--data-dir", str(self.workdir / "etcd"),
                "--listen-client-urls", url,
                "--advertise-client-urls", url,
                "--listen-peer-urls", peer_url,
                "--initial-advertise-peer-urls", peer_url,
                "--initial-cluster", f"seaway-test={peer_url}",
                "--unsafe-no-fsync",
                "--log-level", "warn",
            ],
        )  # fmt: skip
        healthy = b'"health":"true"'
        self._wait(etcd, lambda: _get_ok(port, "/health", None, healthy), "healthy")
        return url

    def _start_apiserver(self, creds: _Credentials, etcd_url: str, port: int) -> None:
        assert self._guard is not None
        egress = self.workdir / "egress-selector.json"
        egress.write_text(json.dumps(_egress_selector(self._guard.path)))
        audit_policy = self.workdir / "audit-policy.json"
        audit_policy.write_text(json.dumps(_audit_policy(), indent=2))
        pki = creds.pki
        apiserver = self._spawn(
            "kube-apiserver",
            [
                "--etcd-servers", etcd_url,
                "--bind-address", "127.0.0.1",
                "--advertise-address", "127.0.0.1",
                "--secure-port", str(port),
                "--cert-dir", str(self.workdir / "certs"),
                "--tls-cert-file", str(creds.apiserver_serving.cert),
                "--tls-private-key-file", str(creds.apiserver_serving.key),
                "--client-ca-file", str(pki.ca.cert),
                "--authorization-mode", "RBAC",
                "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
                "--service-account-key-file", str(pki.sa_pub),
                "--service-account-signing-key-file", str(pki.sa_key),
                "--service-cluster-ip-range", SERVICE_CIDR,
                "--allow-privileged=true",
                # Endpoints may not hold loopback IPs; nothing needs the kubernetes Service's.
                "--endpoint-reconciler-type", "none",
                "--egress-selector-config-file", str(egress),
                "--profiling=false",
                # Blocking: each event is written before the request's handler returns,
                # so a client that got its answer finds its write in the file already.
                "--audit-policy-file", str(audit_policy),
                "--audit-log-path", str(self.workdir / "logs" / AUDIT_LOG),
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
            ],
        )  # fmt: skip
        tls = creds.admin_tls
        self._wait(apiserver, lambda: _get_ok(port, "/readyz", tls, b"ok"), "ready")

    def _start_controllers(self, creds: _Credentials) -> None:
        """controller-manager, scheduler and kwok, started together, then awaited."""
        serving = creds.loopback_serving
        kcm_port, scheduler_port, kwok_port = free_port(), free_port(), free_port()

        def control_loop(name: str, port: int) -> list[str]:
            kubeconfig = str(creds.kubeconfigs[name])
            return [
                "--bind-address", "127.0.0.1",
                "--secure-port", str(port),
                "--tls-cert-file", str(serving.cert),
                "--tls-private-key-file", str(serving.key),
                "--kubeconfig", kubeconfig,
                "--authentication-kubeconfig", kubeconfig,
                "--authorization-kubeconfig", kubeconfig,
                "--leader-elect=false",
            ]  # fmt: skip

        kcm = self._spawn(
            "kube-controller-manager",
            [
                *control_loop("kube-controller-manager", kcm_port),
                "--use-service-account-credentials=true",
                "--root-ca-file", str(creds.pki.ca.cert),
                "--cluster-signing-cert-file", str(creds.pki.ca.cert),
                "--cluster-signing-key-file", str(creds.pki.ca.key),
                "--service-cluster-ip-range", SERVICE_CIDR,
            ],
        )  # fmt: skip
        scheduler = self._spawn("kube-scheduler", control_loop("kube-scheduler", scheduler_port))
        kwok_args = [
            "--kubeconfig", str(creds.kubeconfigs["kwok"]),
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
            "--cidr", POD_CIDR,
            "--node-ip", "127.0.0.1",
            "--server-address", f"127.0.0.1:{kwok_port}",
        ]  # fmt: skip
        for stage in sorted(self.testbin.kwok_stages.glob("*.yaml")):
            kwok_args += ["--config", str(stage)]
        # HOME: kwok also reads ~/.kwok/kwok.yaml when it exists; keep it out.
        kwok_env = {**os.environ, "HOME": str(self.workdir / "kwok-home")}
        kwok = self._spawn("kwok", kwok_args, env=kwok_env)

        ca_only = ssl.create_default_context(cafile=str(creds.pki.ca.cert))
        self._wait(kcm, lambda: _get_ok(kcm_port, "/healthz", ca_only, b"ok"), "healthy")
        self._wait(
            scheduler, lambda: _get_ok(scheduler_port, "/healthz", ca_only, b"ok"), "healthy"
        )
        self._wait(kwok, lambda: _get_ok(kwok_port, "/healthz", None, b"ok"), "healthy")

    def _add_nodes(self, api: _Api) -> None:
        kubelet_version = self.testbin.versions.get("kubernetes", "fake")
        for node in self.nodes:
            api.request("POST", "/api/v1/nodes", node.manifest(kubelet_version))
        for node in self.nodes:
            ready = functools.partial(api.node_ready, node.name)
            self._wait(self._procs["kwok"], ready, f"making node {node.name} Ready")
        # Pods need their namespace's default ServiceAccount (admission checks it).
        default_sa = functools.partial(
            api.exists, "/api/v1/namespaces/default/serviceaccounts/default"
        )
        self._wait(
            self._procs["kube-controller-manager"],
            default_sa,
            "creating the default ServiceAccount",
        )

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Process:
        process = Process(
            name,
            [
                *_die_with_parent(),
                str(self.testbin.bin(name)),
                *args,
                *self.extra_args.get(name, []),
            ],
            log=self.workdir / "logs" / f"{name}.log",
            env=env,
            cwd=self.workdir,
        )
        self._procs[name] = process
        process.start()
        return process

    def _wait(self, process: Process, ready: Any, what: str) -> None:
        try:
            process.wait_until(ready, self.start_timeout, what)
        except RuntimeError as exc:
            raise ClusterStartError(
                f"{exc}\n(logs of all components: {self.workdir / 'logs'})"
            ) from exc

    def _install_crds(self, kube: Kube) -> None:
        """Server-side apply (KServe's InferenceService CRD is too big for the
        last-applied annotation), one source at a time so an error names it."""
        names: list[str] = []
        for path in self.crd_paths:
            args = [
                "apply",
                "--server-side",
                "--force-conflicts",
                f"--field-manager={FIELD_MANAGER}",
            ]
            for file in _yaml_files(path):
                args += ["-f", str(file)]
            applied = kube.kubectl(*args, "-o", "name", check=False)
            if applied.returncode != 0:
                raise ClusterStartError(
                    f"the API server refused the CRDs in {path}:\n{applied.stderr.strip()}"
                )
            names += applied.stdout.split()
        if names:
            self._wait_established(kube, names)

    def _wait_established(self, kube: Kube, names: Sequence[str], timeout: float = 60) -> None:
        """Poll rather than `kubectl wait`: that one fails at once, instead of waiting,
        on a CRD read before the API server first writes its `status.conditions`
        (null until then), which a loaded machine makes likely."""
        deadline = time.monotonic() + timeout
        pending = list(names)
        while True:
            got = kube.kubectl("get", *pending, "-o", "json", check=False)
            if got.returncode == 0:
                answer = json.loads(got.stdout)  # one name: the object, else a List
                items = answer["items"] if answer.get("kind") == "List" else [answer]
                pending = [
                    f"customresourcedefinition.apiextensions.k8s.io/{crd['metadata']['name']}"
                    for crd in items
                    if not any(
                        c.get("type") == "Established" and c.get("status") == "True"
                        for c in (crd.get("status") or {}).get("conditions") or []
                    )
                ]
                if not pending:
                    return
            if time.monotonic() > deadline:
                detail = got.stderr.strip() if got.returncode else " ".join(pending)
                raise ClusterStartError(f"CRDs not Established after {timeout:.0f}s: {detail}")
            time.sleep(0.25)


def _yaml_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
    return [path]


def _stop_all(procs: dict[str, Process]) -> None:
    """SIGTERM every process group at once, then wait on each (newest first)."""
    running = [p for p in reversed(procs.values()) if p.proc is not None]
    for process in running:
        if process.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.proc.pid, signal.SIGTERM)
    for process in running:
        process.stop(grace=15)
    procs.clear()


def _get_ok(port: int, path: str, context: ssl.SSLContext | None, expect: bytes) -> bool:
    """GET http(s)://127.0.0.1:port/path answers 200 with `expect` in the body."""
    conn: http.client.HTTPConnection
    if context is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status == 200 and expect in response.read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class _Api:
    """The few raw API calls the launcher needs before tests take over."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        self.host, self.port, self.context = host, port, context

    def request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=30, context=self.context)
        try:
            data = None if body is None else json.dumps(body)
            conn.request(method, path, data, {"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        if method != "GET" and response.status >= 300:
            raise ClusterStartError(f"{method} {path}: {response.status} {payload[:500]!r}")
        return response.status, json.loads(payload) if payload else None

    def exists(self, path: str) -> bool:
        return self.request("GET", path)[0] == 200

    def node_ready(self, name: str) -> bool:
        status, node = self.request("GET", f"/api/v1/nodes/{name}")
        if status != 200:
            return False
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def start_control_plane(workdir: Path, crd_paths: Sequence[Path] = ()) -> tuple[ControlPlane, Kube]:
    """Build-or-reuse the binaries and start a control plane (for scripts and REPLs)."""
    plane = ControlPlane(ensure_testbin(), workdir, crd_paths=crd_paths)
    try:
        return plane, plane.start()
    except BaseException:
        plane.stop()
        raise


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll `predicate()` until it returns something truthy; return it or fail saying `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
