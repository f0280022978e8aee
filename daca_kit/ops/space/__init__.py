"""The Hugging Face Space for the kit: the folder to upload for each target, its secrets, and the upload.

    folder = build_space("build/space", target="zerogpu")        # free (see targets.py), or "cpu", "docker"
    assert not check_space(folder.path)                          # [] when the folder is complete
    plan = deploy_plan(folder, "you/daca-prototype", space_settings(settings, folder.path))
    print(plan.describe())                                       # the exact calls, secrets masked
    url = run_plan(plan, token)

One module each: `targets` (what each kind of Space is and costs, with the Hub pages that say so),
`build` (the folder), `checks` (is it complete, may the token deploy it), `deploy` (secrets and
variables, the huggingface_hub calls, the wait for the build). `daca-kit space build --target ...`
and notebook 02 call the same functions.
"""

from daca_kit.ops.space.build import (
    SpaceFolder,
    build_space,
    gradio_version,
    lock_pins,
    project_root,
    read_front_matter,
    render_readme,
    requirements_from_lock,
    space_url,
)
from daca_kit.ops.space.checks import check_space, check_token
from daca_kit.ops.space.deploy import (
    DeployPlan,
    SpaceSettings,
    deploy_plan,
    run_plan,
    space_settings,
    upload_space,
    wait_running,
)
from daca_kit.ops.space.targets import APP_PORT, DEFAULT_TARGET, TARGETS, Target, describe_targets, get_target

__all__ = [
    "APP_PORT",
    "DEFAULT_TARGET",
    "TARGETS",
    "DeployPlan",
    "SpaceFolder",
    "SpaceSettings",
    "Target",
    "build_space",
    "check_space",
    "check_token",
    "deploy_plan",
    "describe_targets",
    "get_target",
    "gradio_version",
    "lock_pins",
    "project_root",
    "read_front_matter",
    "render_readme",
    "requirements_from_lock",
    "run_plan",
    "space_settings",
    "space_url",
    "upload_space",
    "wait_running",
]
