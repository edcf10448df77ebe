"""The pip and conda environments list the same pinned set, and the lock pins what they need."""

import re

import yaml
from helpers import REPO


def pins(lines):
    result = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==([\w.+-]+)", line).groups()
            result[name.lower().replace("_", "-")] = version
    return result


def test_environment_yml_lists_requirements_txt_pin_for_pin():
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert pins(pip_section) == pins((REPO / "requirements.txt").read_text().splitlines())


def test_environment_yml_tells_conda_users_about_the_no_deps_packages():
    text = (REPO / "environment.yml").read_text()
    for name in pins((REPO / "requirements-nodeps.txt").read_text().splitlines()):
        assert name in text


def test_lock_agrees_with_every_direct_pin():
    lock = pins((REPO / "requirements.lock").read_text().splitlines())
    for name, version in pins((REPO / "requirements.txt").read_text().splitlines()).items():
        assert lock.get(name) == version, name


def test_installed_versions_are_the_pinned_ones():
    from importlib.metadata import version

    wanted = pins((REPO / "requirements.txt").read_text().splitlines())
    wanted |= pins((REPO / "requirements-nodeps.txt").read_text().splitlines())
    for name, pinned in wanted.items():
        assert version(name).split("+")[0] == pinned, name
