"""Jinja prompt templates: loading, sandboxed strict rendering and hashing.

Templates are files (``planner.j2``, ``actor.j2``, ``critic.j2``, ``reflector.j2``). The
shipped set lives in the repository's ``prompts/`` folder (installed as
``billp/_prompts``); a user folder given with ``--prompts-dir`` overrides them file by
file. Rendering uses a sandboxed environment with ``StrictUndefined``, so a misspelt
variable is an error that names the template, never a silent blank.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import jinja2
from pydantic import BaseModel

from billp.common.template_sandbox import LimitedSandbox

ROLE_TEMPLATES: dict[str, str] = {
    "planner": "planner.j2",
    "actor": "actor.j2",
    "critic": "critic.j2",
    "reflector": "reflector.j2",
}
"""The template file of each role."""


class PromptError(ValueError):
    """A template is missing, malformed, or uses a variable its input does not have."""


class RenderedPrompt(BaseModel):
    """A rendered prompt with the hashes that identify it in run records."""

    text: str
    template: str
    template_hash: str
    prompt_hash: str


def shipped_prompts_dir() -> Path:
    """The folder of the templates that ship with billp."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "_prompts"
    if installed.is_dir():
        return installed
    return package.parent / "prompts"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class PromptLibrary:
    """Loads role templates from an optional user folder, falling back to the shipped set."""

    def __init__(self, user_dir: Path | None = None) -> None:
        if user_dir is not None and not Path(user_dir).is_dir():
            raise PromptError(f"prompts folder not found: {user_dir}")
        search = [str(user_dir)] if user_dir is not None else []
        search.append(str(shipped_prompts_dir()))
        self._env = LimitedSandbox(
            loader=jinja2.FileSystemLoader(search),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._templates: dict[str, tuple[jinja2.Template, str, str]] = {}
        for name in ROLE_TEMPLATES.values():
            self._load(name)

    def _load(self, name: str) -> tuple[jinja2.Template, str, str]:
        if name not in self._templates:
            try:
                source, filename, _ = self._env.loader.get_source(self._env, name)  # type: ignore[union-attr]
                template = self._env.from_string(source)
            except jinja2.TemplateNotFound:
                raise PromptError(
                    f"template {name} not found in {self._env.loader.searchpath}"
                ) from None  # type: ignore[union-attr]
            except jinja2.TemplateSyntaxError as exc:
                raise PromptError(f"template {name}, line {exc.lineno}: {exc.message}") from None
            self._templates[name] = (template, _sha(source), filename or name)
        return self._templates[name]

    def template_hashes(self) -> dict[str, str]:
        """Hash of every loaded template's source, for run manifests."""
        return {name: entry[1] for name, entry in sorted(self._templates.items())}

    def template_sources(self) -> dict[str, str]:
        """The source of every loaded template, for manifests and run comparison."""
        return {
            name: Path(entry[2]).read_text(encoding="utf-8")
            for name, entry in sorted(self._templates.items())
        }

    def source(self, role: str) -> str:
        """The source text of ``role``'s template."""
        template_name = ROLE_TEMPLATES.get(role, role)
        return self.template_sources()[template_name]

    def render(self, role: str, data: BaseModel) -> RenderedPrompt:
        """Render the template of ``role`` with the fields of ``data``."""
        name = ROLE_TEMPLATES.get(role, role)
        template, template_hash, filename = self._load(name)
        try:
            text = self._env.render_limited(template, dict(data)).strip()
        except jinja2.UndefinedError as exc:
            raise PromptError(
                f"template {filename} uses an undefined variable ({exc.message}); "
                f"{type(data).__name__} provides: {', '.join(type(data).model_fields)}"
            ) from None
        except jinja2.TemplateError as exc:
            raise PromptError(f"template {filename} failed to render: {exc}") from None
        return RenderedPrompt(
            text=text, template=name, template_hash=template_hash, prompt_hash=_sha(text)
        )
