"""Write a new plugin package to start from: ``crmmetrics plugins new NAME [--dir DIR]``.

The package is complete and installable as written: a pyproject with the ``crmmetrics``
entry point, one metric with its SQL pushed down and a parameter, one default standard, a
passing test that uses the fixtures of ``crmmetrics.testing``, and a README. The files are
rendered from the templates in ``crmmetrics/cli/scaffold_template/`` (``string.Template``:
``${name}`` is substituted, ``$$`` is a literal dollar).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from crmmetrics import __version__
from crmmetrics.core.errors import ConfigError

TEMPLATES = Path(__file__).resolve().parent / "scaffold_template"
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")

# Template file -> path in the new package (``{module}`` and ``{snake}`` are filled in).
_FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "plugin.py.tmpl": "{module}/__init__.py",
    "test_plugin.py.tmpl": "tests/test_{snake}.py",
}


@dataclass
class PluginNames:
    """The names a plugin goes by, all derived from the one the author chose."""

    name: str  # as given, without a leading "crmmetrics-": "loyalty-points"
    snake: str  # the entry-point (plugin) name: "loyalty_points"
    distribution: str  # what pip installs: "crmmetrics-loyalty-points"
    module: str  # the importable package: "crmmetrics_loyalty_points"
    metric_key: str  # the scaffold's metric: "loyalty_points_repeat_customer_rate"
    title: str  # for prose: "Loyalty points"

    @classmethod
    def from_name(cls, name: str) -> PluginNames:
        base = name.strip().lower()
        for prefix in ("crmmetrics-", "crmmetrics_"):
            base = base.removeprefix(prefix)
        if not _NAME.match(base):
            raise ConfigError(
                f"plugin name {name!r}: use lower-case letters, digits and single hyphens, starting with a letter "
                "(e.g. loyalty or loyalty-points)"
            )
        snake = base.replace("-", "_")
        return cls(
            name=base,
            snake=snake,
            distribution=f"crmmetrics-{snake.replace('_', '-')}",
            module=f"crmmetrics_{snake}",
            metric_key=f"{snake}_repeat_customer_rate",
            title=snake.replace("_", " ").capitalize(),
        )


@dataclass
class ScaffoldedPlugin:
    """What ``write_plugin`` created."""

    root: Path
    names: PluginNames
    files: list[Path] = field(default_factory=list)

    @property
    def metric_key(self) -> str:
        return self.names.metric_key


def render(template: str, names: PluginNames) -> str:
    """One template's text with the plugin's names filled in."""
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    return Template(text).substitute(
        name=names.name,
        snake=names.snake,
        distribution=names.distribution,
        module=names.module,
        metric_key=names.metric_key,
        title=names.title,
        crmmetrics_version=__version__,
    )


def write_plugin(name: str, directory: Path) -> ScaffoldedPlugin:
    """Create ``directory/crmmetrics-NAME`` with a complete plugin package.

    Refuses (ConfigError) a bad name or an existing target. The package is written into a
    temporary directory beside the target and renamed into place, so a failure leaves nothing.
    """
    names = PluginNames.from_name(name)
    root = Path(directory) / names.distribution
    if root.exists():
        raise ConfigError(f"{root}: already exists; choose another name or --dir")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".{names.distribution}.{os.getpid()}.partial"
    staging.mkdir()
    try:
        relative = []
        for template, target in _FILES.items():
            path = Path(target.format(module=names.module, snake=names.snake))
            (staging / path).parent.mkdir(parents=True, exist_ok=True)
            (staging / path).write_text(render(template, names), encoding="utf-8")
            relative.append(path)
        staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ScaffoldedPlugin(root=root, names=names, files=[root / path for path in relative])
