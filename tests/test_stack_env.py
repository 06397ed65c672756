"""The native launcher gives each service only the settings it reads, as compose gives
each container: a service never holds another service's secrets."""
from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys

from stack.environment import READS, service_env, stack_env
from stack.layout import ROOT, TEST
from stack.secrets import GENERATED

FAKE = {name: f"secret-{name.lower()}" for name in GENERATED}
CONTAINER = {"auth": "auth-svc", "file": "file-svc", "upload": "upload-svc",
             "streaming": "streaming-svc", "watermark": "watermark-svc", "worker": "watermark-worker"}


def compose_secrets() -> dict[str, set[str]]:
    """Each container's `secrets:` list in docker-compose.yml, as setting names."""
    text = (ROOT / "docker-compose.yml").read_text()
    blocks = re.split(r"^  (?=[a-z][\w-]*:\s*$)", text.split("\nservices:\n", 1)[1], flags=re.M)
    anchors, out = {}, {}
    for block in blocks:
        name = block.split(":", 1)[0]
        m = re.search(r"^    secrets:\s*(&[\w-]+\s*)?(\[[^\]]*\]|\*[\w-]+)", block, re.M)
        if not m:
            continue
        listed = anchors[m.group(2)[1:]] if m.group(2).startswith("*") else set(re.findall(r"[\w]+", m.group(2)))
        if m.group(1):
            anchors[m.group(1).strip()[1:]] = listed
        out[name] = {s.upper() for s in listed}
    return out


def test_each_service_gets_the_secrets_compose_gives_it():
    compose = compose_secrets()
    for service, container in CONTAINER.items():
        given = set(service_env(TEST, FAKE, service)) & set(GENERATED)
        assert given == compose[container], service
    assert "DB_PASSWORD" not in service_env(TEST, FAKE, "file")
    # Tests and benchmarks still read every value back from the stack's environment.
    assert set(GENERATED) <= set(stack_env(TEST, FAKE))


def test_launcher_gate_starts_a_service_with_its_env_file_only(infra, tmp_path):
    """`make up` runs each service through `python -m stack gate --env-file <its file>` (a
    supervisord program):
    the process sees its own settings and no other service's secrets."""
    from stack.__main__ import write_config
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(write_config(TEST, infra["secrets"]))
    command = conf["program:upload"]["command"]
    assert "upload.env" in command and "watermark" not in command.split("--env-file")[1]
    assert "SECRET" not in conf["supervisord"]["environment"]     # no secret for every process
    envfile = TEST.var / "env" / "upload.env"
    assert oct(envfile.stat().st_mode & 0o777) == "0o600"
    show = [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]
    env = {k: v for k, v in os.environ.items() if k not in GENERATED}
    out = subprocess.run([sys.executable, "-m", "stack", "gate", "--stack", TEST.name, "--env-file", str(envfile),
                          "--", *show], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["SERVICE_SECRET_UPLOAD"] == infra["secrets"]["SERVICE_SECRET_UPLOAD"]
    assert seen["DB_PASSWORD"] == infra["secrets"]["DB_PASSWORD"]
    for other in set(GENERATED) - READS["upload"]:
        assert other not in seen, other
