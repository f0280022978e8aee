"""The Hugging Face Space folder, its secrets plan, and the upload (on a fake HfApi: no network)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from daca_kit.ops import space
from daca_kit.ops.envfile import describe_env, mask, read_env, write_env


@dataclass
class FakeHfApi:
    """Records the huggingface_hub calls it gets, in order; answers like the real one."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    stages: list[str] = field(default_factory=lambda: ["BUILDING", "RUNNING"])

    def create_repo(self, **kwargs: Any) -> str:
        self.calls.append(("create_repo", kwargs))
        return f"https://huggingface.co/spaces/{kwargs['repo_id']}"

    def add_space_secret(self, **kwargs: Any) -> None:
        self.calls.append(("add_space_secret", kwargs))

    def add_space_variable(self, **kwargs: Any) -> None:
        self.calls.append(("add_space_variable", kwargs))

    def upload_folder(self, **kwargs: Any) -> None:
        assert Path(kwargs["folder_path"]).is_dir()
        self.calls.append(("upload_folder", kwargs))

    def get_space_runtime(self, repo_id: str) -> Any:
        stage = self.stages.pop(0) if len(self.stages) > 1 else self.stages[0]
        return type("Runtime", (), {"stage": stage})()


def front(folder: Path) -> dict[str, Any]:
    text = (folder / "README.md").read_text(encoding="utf-8")
    head, _, _ = text.removeprefix("---\n").partition("\n---\n")
    data = yaml.safe_load(head)
    assert isinstance(data, dict)
    return data


# -- the folder ------------------------------------------------------------------------------------------------
def test_zerogpu_folder_is_the_free_gradio_space_on_python_312(tmp_path: Path) -> None:
    folder = space.build_space(tmp_path / "space")  # the default target: the one a free account may host
    assert folder.target.name == "zerogpu" and folder.target.free
    assert space.check_space(folder.path) == []
    data = front(folder.path)
    assert data == folder.front_matter
    assert data["sdk"] == "gradio" and data["app_file"] == "app.py" and "app_port" not in data
    assert data["python_version"] == "3.12.12" and data["hf_oauth"] is True
    py312 = space.lock_pins(space.project_root() / "requirements-py312.lock")
    assert data["sdk_version"] == py312["gradio"]
    requirements = (folder.path / "requirements.txt").read_text().splitlines()
    assert f"gradio=={data['sdk_version']}" in requirements and f"spaces=={py312['spaces']}" in requirements
    assert requirements == [f"{name}=={version}" for name, version in py312.items()]
    for name in ("app.py", "daca_kit/__init__.py", "daca_kit/web/zerogpu.py", "components/pubsub.yaml"):
        assert name in folder.files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in folder.files)
    assert "Dockerfile" not in folder.files
    readme = (folder.path / "README.md").read_text()
    assert "Free for a personal account in good standing" in readme and "spaces-zerogpu.md" in readme


def test_cpu_folder_is_a_gradio_space_on_the_runtime_lock(tmp_path: Path) -> None:
    folder = space.build_space(tmp_path / "cpu", target="cpu")
    assert space.check_space(folder.path) == [] and folder.target.plan == "PRO"
    data = front(folder.path)
    assert data["python_version"] == "3.11" and data["suggested_hardware"] == "cpu-basic"
    assert data["hf_oauth"] is True and data["sdk_version"] == space.gradio_version()
    requirements = (folder.path / "requirements.txt").read_text().splitlines()
    assert not any(line.startswith("spaces==") for line in requirements)
    assert all("--hash" not in line and "==" in line for line in requirements)
    assert "Needs a paid plan (PRO)" in (folder.path / "README.md").read_text()


def test_docker_space_folder_is_complete(tmp_path: Path) -> None:
    folder = space.build_space(tmp_path / "docker", target="docker")
    assert space.check_space(folder.path) == []
    data = front(folder.path)
    assert data["sdk"] == "docker" and data["app_port"] == 7860 and "sdk_version" not in data
    assert "hf_oauth" not in data and folder.target.plan == "PRO"
    for name in ("Dockerfile", "requirements.lock", "pyproject.toml", "docker/supervise.py", "app.py"):
        assert name in folder.files, name


def test_check_space_names_what_is_wrong(tmp_path: Path) -> None:
    folder = space.build_space(tmp_path / "space").path
    (folder / "app.py").unlink()
    (folder / ".env").write_text("GEMINI_API_KEY=x\n")
    requirements = folder / "requirements.txt"
    requirements.write_text(
        "".join(
            line + "\n" for line in requirements.read_text().splitlines() if not line.startswith("spaces")
        )
    )
    problems = " ".join(space.check_space(folder))
    assert "app.py is missing" in problems and ".env is in the folder" in problems
    assert "spaces package" in problems

    cpu = space.build_space(tmp_path / "cpu", target="cpu").path
    readme = cpu / "README.md"
    readme.write_text(readme.read_text().replace("python_version: '3.11'", "python_version: '3.9'"))
    assert any("python_version should be 3.11" in p for p in space.check_space(cpu))

    docker = space.build_space(tmp_path / "docker", target="docker").path
    (docker / "docker" / "supervise.py").unlink()
    assert any("docker/supervise.py" in p for p in space.check_space(docker))

    readme.write_text("no front matter\n")
    assert space.check_space(cpu) and "sdk" in " ".join(space.check_space(cpu))


def test_build_refuses_an_unknown_target(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="zerogpu, cpu, docker"):
        space.build_space(tmp_path / "x", target="streamlit")


@pytest.mark.parametrize("target", sorted(space.TARGETS))
def test_the_cli_builds_each_target(tmp_path: Path, target: str, capsys: pytest.CaptureFixture[str]) -> None:
    from daca_kit.cli import main

    assert main(["space", "build", "--target", target, str(tmp_path / target)]) == 0
    shown = capsys.readouterr().out
    assert str(tmp_path / target) in shown and space.TARGETS[target].cost in shown
    assert space.check_space(tmp_path / target) == []


def test_space_url() -> None:
    assert space.space_url("Some.User/daca_proto") == "https://some-user-daca-proto.hf.space"
    with pytest.raises(ValueError):
        space.space_url("no-slash")


# -- secrets and variables -------------------------------------------------------------------------------------
def test_space_settings_split_and_mask(settings_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert = tmp_path / "cc-ca.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    folder = space.build_space(tmp_path / "space").path
    settings = settings_factory(
        database_url=f"cockroachdb://daca:db-pw-123@host.invalid:26257/defaultdb?sslmode=verify-full&sslrootcert={cert}",
        gemini_api_key="gemini-key-abc",
        gemini_model="gemini-test-model",
        redis_url="rediss://default:redis-token-xyz@host.invalid:6379",
    )
    plan = space.space_settings(settings, folder)
    assert set(plan.secrets) >= {
        "DATABASE_URL",
        "GEMINI_API_KEY",
        "REDIS_URL",
        "DACA_ADMIN_TOKEN",
        "DACA_REVIEWER_PASSWORD",
    }
    assert plan.variables["GEMINI_MODEL"] == "gemini-test-model"
    assert "PORT" not in plan.secrets and "PORT" not in plan.variables
    assert (
        "sslrootcert=certs%2Fcc-ca.crt" in plan.secrets["DATABASE_URL"]
        or "sslrootcert=certs/cc-ca.crt" in plan.secrets["DATABASE_URL"]
    )
    assert (folder / "certs" / "cc-ca.crt").exists()
    shown = plan.describe()
    for secret in ("db-pw-123", "gemini-key-abc", "redis-token-xyz", "test-admin-token", "test-reviewer-pw"):
        assert secret not in shown
    assert "GEMINI_API_KEY = <set, 14 characters>" in shown and "daca:***@host.invalid" in shown


def test_space_settings_warn_about_sqlite(settings_factory) -> None:  # type: ignore[no-untyped-def]
    plan = space.space_settings({"GEMINI_API_KEY": "k"})
    assert any("SQLite" in note for note in plan.notes)
    assert any("DACA_ADMIN_TOKEN" in note for note in plan.notes)


# -- deployment ------------------------------------------------------------------------------------------------
def test_deploy_plan_runs_in_order_on_the_api(tmp_path: Path) -> None:
    folder = space.build_space(tmp_path / "space")
    settings = space.SpaceSettings(
        secrets={"GEMINI_API_KEY": "gemini-key-abc", "DACA_ADMIN_TOKEN": "admin-abc"},
        variables={"GEMINI_MODEL": "m"},
    )
    plan = space.deploy_plan(folder, "someone/daca-prototype", settings)
    described = plan.describe()
    assert "gemini-key-abc" not in described and "admin-abc" not in described
    assert described.splitlines()[0].startswith(" 1. HfApi.create_repo(repo_id='someone/daca-prototype'")

    api = FakeHfApi()
    url = space.run_plan(plan, "hf_token_value", api=api)
    assert url == "https://someone-daca-prototype.hf.space"
    names = [call for call, _ in api.calls]
    assert names == [
        "create_repo",
        "add_space_secret",
        "add_space_secret",
        "add_space_variable",
        "upload_folder",
    ]
    create = api.calls[0][1]
    assert create["space_sdk"] == "gradio" and create["repo_type"] == "space" and create["exist_ok"] is True
    assert create["space_hardware"] == "zero-a10g"  # ZeroGPU, asked for when the Space is created
    assert api.calls[1][1] == {
        "repo_id": "someone/daca-prototype",
        "key": "GEMINI_API_KEY",
        "value": "gemini-key-abc",
    }
    upload = api.calls[-1][1]
    assert upload["repo_type"] == "space" and ".env" in upload["ignore_patterns"]


def test_upload_space_reads_the_sdk_from_the_folder(tmp_path: Path) -> None:
    folder = space.build_space(tmp_path / "docker", target="docker")
    api = FakeHfApi()
    space.upload_space(folder.path, "someone/daca-docker", "hf_token_value", {"GEMINI_API_KEY": "k"}, api=api)
    assert api.calls[0][1]["space_sdk"] == "docker" and api.calls[0][1]["space_hardware"] == "cpu-basic"
    zerogpu = space.build_space(tmp_path / "zerogpu")
    space.upload_space(zerogpu.path, "someone/daca", "hf_token_value", api=api)
    assert api.calls[-2][1]["space_hardware"] == "zero-a10g"
    with pytest.raises(ValueError, match="HF_TOKEN"):
        space.upload_space(folder.path, "someone/daca-docker", "", api=api)


def test_wait_running_follows_the_stages() -> None:
    api = FakeHfApi(stages=["BUILDING", "APP_STARTING", "RUNNING"])
    assert space.wait_running("someone/x", "t", api=api, interval=0) == "RUNNING"
    with pytest.raises(RuntimeError, match="BUILD_ERROR"):
        space.wait_running("someone/x", "t", api=FakeHfApi(stages=["BUILD_ERROR"]), interval=0)


def test_check_token_without_a_token_is_not_configured() -> None:
    result = space.check_token("")
    assert result.status == "not configured" and not result.failed


# -- the .env file the notebooks share ------------------------------------------------------------------------
def test_env_file_round_trip_and_masking(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# mine\nKEEP=1\nREDIS_URL=old\n")
    values = {
        "REDIS_URL": "rediss://default:t'o#k\\en@h:6379",
        "GEMINI_API_KEY": "key with space",
        "GEMINI_MODEL": "m",
    }
    write_env(path, values)
    assert read_env(path) == {"KEEP": "1", **values}
    assert path.read_text().startswith("# mine\n") and oct(path.stat().st_mode & 0o777) == "0o600"
    shown = describe_env(values)
    assert "t'o#k" not in shown and "key with space" not in shown
    assert "REDIS_URL=rediss://default:***@h:6379" in shown and "GEMINI_MODEL=m" in shown
    assert mask("DATABASE_URL", "postgresql://u:p@h/db?password=x") == "postgresql://u:***@h/db?password=***"
