"""Compare our public API with the reference release (ProxyStore 1.1.0 + proxystore-ex).

The same introspection snippet runs in the reference venv (`.bench-venv/`) and in the
workspace venv. For each public module of the reference (minus the parts we do not
re-implement) it lists the public names and, for callables and classes, their
parameters, public members and fields. The diff then reports, per module:

- names missing in ours;
- parameters the reference accepts that ours does not accept by the same name and
  kind (ours may add keyword-only parameters that have defaults), and defaults that
  differ;
- public methods, properties and fields of classes missing in ours.

    uv run --frozen python -m scripts.api_diff [--json] [--module PREFIX]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from scripts.bench import _refvenv

# Reference modules we do not re-implement (servers, peering, Globus, the deprecated
# DIM stub and the proxystore_ex alias module itself).
EXCLUDED_PREFIXES = (
    "proxystore.p2p",
    "proxystore.globus",
    "proxystore.connectors.globus",
    "proxystore.connectors.dim",
    "proxystore.ex",
)

# Reference modules that live elsewhere in the workspace: reference -> ours.
RENAMED = {
    "proxystore_ex.connectors.dim.zmq": "proxystore.connectors.dim.zmq",
    "proxystore_ex.connectors.dim.models": "proxystore.connectors.dim.models",
    "proxystore_ex.connectors.dim.exceptions": "proxystore.connectors.dim.exceptions",
    "proxystore_ex.plugins.distributed": "proxystore.store.dask",
}

# Runs in both venvs. argv[1]: JSON {"walk": [roots], "exclude": [...],
# "modules": [...]}. Prints one JSON document: module -> description.
_SNIPPET = r"""
import dataclasses, importlib, inspect, json, pkgutil, re, sys, types, typing, warnings

spec = json.loads(sys.argv[1])
DUNDERS = {
    "__call__", "__enter__", "__exit__", "__aenter__", "__aexit__", "__iter__",
    "__next__", "__len__", "__getitem__", "__setitem__", "__contains__",
    "__reduce__", "__hash__", "__eq__",
}

def import_quiet(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(name)

def walk(root, exclude):
    out = []
    todo = [root]
    while todo:
        name = todo.pop()
        if any(name == e or name.startswith(e + ".") for e in exclude):
            continue
        if any(part.startswith("_") for part in name.split(".")):
            continue
        out.append(name)
        try:
            mod = import_quiet(name)
        except Exception:
            continue
        path = getattr(mod, "__path__", None)
        if path is not None:
            for info in pkgutil.iter_modules(path):
                todo.append(name + "." + info.name)
    return sorted(out)

def norm_default(value):
    if value is inspect.Parameter.empty:
        return None
    return re.sub(r" at 0x[0-9a-f]+", "", repr(value))

def sig_of(obj, drop_first=False):
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if drop_first and params:
        params = params[1:]
    return [[p.name, p.kind.name, norm_default(p.default)] for p in params]

def class_fields(cls):
    names = set()
    mf = getattr(cls, "model_fields", None)
    if isinstance(mf, dict):
        names.update(mf)
    if dataclasses.is_dataclass(cls):
        names.update(f.name for f in dataclasses.fields(cls))
    fields = getattr(cls, "_fields", None)
    if isinstance(fields, tuple):
        names.update(fields)
    for klass in cls.__mro__:
        if (getattr(klass, "__module__", "") or "").startswith("proxystore"):
            names.update(getattr(klass, "__annotations__", {}) or {})
    return sorted(n for n in names if not n.startswith("_"))

def instance_attrs(cls):
    # Public names assigned as `self.<name> = ...` in the methods of the class.
    import ast, textwrap
    names = set()
    for klass in cls.__mro__:
        if not (getattr(klass, "__module__", "") or "").startswith("proxystore"):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                    and not target.attr.startswith("_")
                ):
                    names.add(target.attr)
    return sorted(names)

def describe_member(cls, name):
    owner = next((k for k in cls.__mro__ if name in vars(k)), None)
    raw = vars(owner)[name] if owner is not None else getattr(cls, name, None)
    origin = getattr(owner, "__module__", "") if owner is not None else ""
    if isinstance(raw, staticmethod):
        kind, sig = "method", sig_of(raw.__func__)
    elif isinstance(raw, classmethod):
        kind, sig = "method", sig_of(getattr(cls, name))
    elif inspect.isfunction(raw):
        kind, sig = "method", sig_of(raw, drop_first=True)
    elif callable(raw) and not isinstance(raw, type):
        kind, sig = "method", None
    elif hasattr(raw, "__get__") and not isinstance(raw, type):
        kind, sig = "property", None
    else:
        kind, sig = "attribute", None
    return {"kind": kind, "sig": sig, "origin": origin or ""}

def describe(value):
    if isinstance(value, type):
        members = {}
        for name in dir(value):
            if name.startswith("_") and name not in DUNDERS:
                continue
            try:
                members[name] = describe_member(value, name)
            except Exception:
                continue
        return {
            "kind": "class",
            "sig": sig_of(value),
            "members": members,
            "fields": class_fields(value),
            "instance_attrs": instance_attrs(value),
            "protocol": bool(getattr(value, "_is_protocol", False)),
            "bases": [b.__module__ + "." + b.__qualname__ for b in value.__mro__[1:]],
        }
    if callable(value) and not isinstance(value, types.ModuleType):
        return {"kind": "function", "sig": sig_of(value)}
    if isinstance(value, types.ModuleType):
        return {"kind": "module"}
    if isinstance(value, (typing.TypeVar, typing.ParamSpec)):
        return {"kind": "typevar"}
    return {"kind": "other"}

def public_names(mod):
    exported = getattr(mod, "__all__", None)
    if exported is not None:
        return list(exported)
    names = []
    for attr, value in vars(mod).items():
        if attr.startswith("_") or isinstance(value, types.ModuleType):
            continue
        if getattr(value, "__module__", None) == mod.__name__:
            names.append(attr)
    return names

modules = list(spec.get("modules", []))
for root in spec.get("walk", []):
    modules.extend(walk(root, spec.get("exclude", [])))
result = {}
for name in modules:
    try:
        mod = import_quiet(name)
    except Exception as exc:
        result[name] = {"error": type(exc).__name__ + ": " + str(exc)}
        continue
    names = {}
    wanted = public_names(mod)
    if spec.get("all_attributes"):
        wanted += [a for a in vars(mod) if not a.startswith("_") and a not in wanted]
    for attr in wanted:
        if not hasattr(mod, attr):
            names[attr] = {"kind": "undefined"}
            continue
        try:
            names[attr] = describe(getattr(mod, attr))
            names[attr]["exported"] = attr in public_names(mod)
        except Exception as exc:
            names[attr] = {"kind": "other", "error": repr(exc)}
    result[name] = {"names": names}
print(json.dumps(result))
"""

ModuleInfo = dict[str, Any]
Sig = list[list[Any]]


@dataclass
class ModuleDiff:
    """Everything that differs in one module."""

    ref: str
    ours: str
    error: str | None = None
    missing: list[str] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def gap_count(self) -> int:
        """Number of user-visible gaps (notes are informational only)."""
        return len(self.missing) + len(self.issues) + (1 if self.error else 0)


def _run_ours(
    spec: dict[str, Any], *, env: dict[str, str] | None = None
) -> dict[str, ModuleInfo]:
    out = subprocess.run(
        [sys.executable, "-c", _SNIPPET, json.dumps(spec)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=str(_refvenv.VENV_DIR) if env else None,
    )
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    result: dict[str, ModuleInfo] = json.loads(lines[-1])
    return result


def _run_ref(spec: dict[str, Any]) -> dict[str, ModuleInfo]:
    result: dict[str, ModuleInfo] = _refvenv.run_json(_SNIPPET, json.dumps(spec))
    # The reference venv lacks some optional dependencies (mypy, dask). Retry those
    # modules with our interpreter, the reference's site-packages placed first on
    # the path: its regular `proxystore` package then wins over our namespace
    # portions, while the missing third-party packages come from our venv.
    failed = [
        name
        for name, info in result.items()
        if info.get("error", "").startswith(("ModuleNotFoundError", "ImportError"))
    ]
    if failed:
        _refvenv.ensure()
        site = next((_refvenv.VENV_DIR / "lib").glob("python3*/site-packages"))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONPATH"] = str(site)
        retried = _run_ours({"modules": failed}, env=env)
        for name, info in retried.items():
            if "error" not in info:
                info["via"] = "reference sources on our interpreter"
                result[name] = info
    return result


_POSITIONAL = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")


def compare_signatures(ref: Sig, ours: Sig) -> tuple[list[str], list[str]]:
    """Return (incompatibilities, notes) of `ours` against the reference `ref`.

    Ours must accept every call the reference accepts: each reference parameter by
    the same name and kind (a positional-or-keyword parameter in ours also serves a
    keyword-only or positional-only one of the reference, at the same position), with
    the same default. Extra parameters in ours must be optional.
    """
    issues: list[str] = []
    notes: list[str] = []
    # Positional-only parameters are matched by position: their names are invisible.
    ref_posonly = [p[0] for p in ref if p[1] == "POSITIONAL_ONLY"]
    ours = [list(p) for p in ours]
    for index, param in enumerate(p for p in ours if p[1] == "POSITIONAL_ONLY"):
        if index < len(ref_posonly):
            param[0] = ref_posonly[index]
    ours_by_name = {p[0]: p for p in ours}
    ours_kinds = {p[1] for p in ours}
    ref_pos = [p[0] for p in ref if p[1] in _POSITIONAL]
    ours_pos = [p[0] for p in ours if p[1] in _POSITIONAL]
    for name, kind, default in ref:
        if kind in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            if kind not in ours_kinds:
                star = "*" if kind == "VAR_POSITIONAL" else "**"
                issues.append(f"does not accept {star}{name}")
            continue
        mine = ours_by_name.get(name)
        if mine is None:
            if kind == "KEYWORD_ONLY" and "VAR_KEYWORD" in ours_kinds:
                notes.append(f"'{name}' only accepted through **kwargs")
            elif kind == "POSITIONAL_ONLY" and "VAR_POSITIONAL" in ours_kinds:
                notes.append(f"'{name}' only accepted through *args")
            else:
                issues.append(f"missing parameter '{name}' ({kind})")
            continue
        _, my_kind, my_default = mine
        if my_kind != kind:
            widened = my_kind == "POSITIONAL_OR_KEYWORD" and kind in (
                "KEYWORD_ONLY",
                "POSITIONAL_ONLY",
            )
            msg = f"'{name}' is {my_kind} (reference: {kind})"
            (notes if widened else issues).append(msg)
        both_positional = kind in _POSITIONAL and my_kind in _POSITIONAL
        if both_positional and ref_pos.index(name) != ours_pos.index(name):
            issues.append(f"'{name}' is at another position")
        if default != my_default:
            if default is None:
                notes.append(f"'{name}' is optional in ours (default {my_default})")
            else:
                issues.append(f"'{name}' default {my_default} (reference: {default})")
    ref_names = {p[0] for p in ref}
    for name, kind, default in ours:
        if name in ref_names or kind in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            continue
        if default is None:
            issues.append(f"extra required parameter '{name}' ({kind})")
        elif kind != "KEYWORD_ONLY":
            notes.append(f"extra optional parameter '{name}' is {kind}")
    return issues, notes


def _fmt_sig(sig: Sig | None) -> str:
    if sig is None:
        return "(?)"
    parts = []
    for name, kind, default in sig:
        prefix = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(kind, "")
        parts.append(prefix + name + (f"={default}" if default is not None else ""))
    return "(" + ", ".join(parts) + ")"


# Set by pydantic on every model class; meaningless for our dataclass configs.
_PYDANTIC_INTERNALS = frozenset(
    {"model_config", "model_fields", "model_computed_fields"}
)


def _anonymous(sig: Sig) -> Sig:
    """Rename positional parameters by position (for dunder comparisons)."""
    out: Sig = []
    for index, (name, kind, default) in enumerate(sig):
        if kind in _POSITIONAL:
            name, kind = f"#{index}", "POSITIONAL_ONLY"
        out.append([name, kind, default])
    return out


def _third_party(origin: str) -> bool:
    return not origin.startswith("proxystore")


def _diff_class(path: str, ref: ModuleInfo, ours: ModuleInfo, diff: ModuleDiff) -> None:
    ref_members: dict[str, Any] = ref.get("members", {})
    our_members: dict[str, Any] = ours.get("members", {})
    inherited_missing = []
    for mname, rinfo in sorted(ref_members.items()):
        oinfo = our_members.get(mname)
        if oinfo is None:
            if mname in ours.get("fields", []):
                continue
            if _third_party(rinfo["origin"]) or mname in _PYDANTIC_INTERNALS:
                inherited_missing.append(mname)
            else:
                diff.issues.append(f"{path}.{mname}: missing {rinfo['kind']}")
            continue
        if _third_party(rinfo["origin"]) or rinfo["kind"] != "method":
            continue
        if rinfo["sig"] is not None and oinfo.get("sig") is not None:
            # Dunder methods are called by the interpreter, positionally: only
            # their arity matters, not their parameter names.
            dunder = mname.startswith("__")
            issues, notes = compare_signatures(
                _anonymous(rinfo["sig"]) if dunder else rinfo["sig"],
                _anonymous(oinfo["sig"]) if dunder else oinfo["sig"],
            )
            if ref.get("protocol") and ours.get("protocol"):
                # A protocol's positional-only parameter accepts more implementations
                # (any parameter name): a widening for the structural check.
                narrowed = [m for m in issues if "POSITIONAL_ONLY (reference" in m]
                issues = [m for m in issues if m not in narrowed]
                notes = notes + narrowed
            diff.issues.extend(f"{path}.{mname}(): {msg}" for msg in issues)
            diff.notes.extend(f"{path}.{mname}(): {msg}" for msg in notes)
    if inherited_missing:
        diff.notes.append(
            f"{path}: {len(inherited_missing)} members inherited from third-party "
            f"bases missing: {', '.join(inherited_missing)}"
        )
    our_attrs = (
        set(our_members)
        | set(ours.get("fields", []))
        | set(ours.get("instance_attrs", []))
    )
    for fname in ref.get("fields", []):
        if fname not in our_attrs and fname not in ref_members:
            diff.issues.append(f"{path}.{fname}: missing field")
    for aname in ref.get("instance_attrs", []):
        known = set(ref_members) | set(ref.get("fields", []))
        if aname not in our_attrs and aname not in known:
            diff.issues.append(f"{path}.{aname}: missing instance attribute")


def diff_module(
    ref_name: str, our_name: str, ref: ModuleInfo, ours: ModuleInfo
) -> ModuleDiff:
    """Diff one module's description (`ref`) against ours."""
    diff = ModuleDiff(ref=ref_name, ours=our_name)
    if "error" in ref:
        diff.notes.append(f"reference module failed to import: {ref['error']}")
        return diff
    if "error" in ours:
        diff.error = ours["error"]
        return diff
    our_names: dict[str, Any] = ours["names"]
    for name, rinfo in sorted(ref["names"].items()):
        oinfo = our_names.get(name)
        if oinfo is None or oinfo["kind"] == "undefined":
            # Type variables only matter to annotations inside the module itself.
            target = diff.notes if rinfo["kind"] == "typevar" else diff.missing
            target.append(f"{name} ({rinfo['kind']})")
            continue
        if not oinfo.get("exported", True):
            diff.notes.append(f"{name}: defined but not in our __all__")
        if rinfo["kind"] in ("class", "function"):
            if oinfo["kind"] not in ("class", "function"):
                diff.issues.append(f"{name}: is {oinfo['kind']} (reference: callable)")
                continue
            if rinfo.get("sig") is not None and oinfo.get("sig") is not None:
                issues, notes = compare_signatures(rinfo["sig"], oinfo["sig"])
                if issues:
                    diff.issues.append(
                        f"{name}{_fmt_sig(oinfo['sig'])} vs reference "
                        f"{name}{_fmt_sig(rinfo['sig'])}: " + "; ".join(issues)
                    )
                diff.notes.extend(f"{name}: {msg}" for msg in notes)
        if rinfo["kind"] == "class":
            if oinfo["kind"] != "class":
                diff.notes.append(f"{name}: a function in ours (reference: class)")
                continue
            _diff_class(name, rinfo, oinfo, diff)
    return diff


def collect() -> list[ModuleDiff]:
    """Introspect both venvs and diff every compared module."""
    ref = _run_ref(
        {
            "walk": ["proxystore"],
            "exclude": list(EXCLUDED_PREFIXES),
            "modules": list(RENAMED),
        }
    )
    mapping = {name: RENAMED.get(name, name) for name in ref}
    ours = _run_ours({"modules": sorted(set(mapping.values()))})
    return [
        diff_module(ref_name, our_name, ref[ref_name], ours[our_name])
        for ref_name, our_name in sorted(mapping.items())
    ]


def render(diffs: list[ModuleDiff], *, verbose: bool = False) -> str:
    """Render a readable report."""
    lines: list[str] = []
    total = 0
    for d in diffs:
        total += d.gap_count
        title = d.ref if d.ref == d.ours else f"{d.ref} -> {d.ours}"
        status = "ok" if d.gap_count == 0 else f"{d.gap_count} gap(s)"
        lines.append(f"== {title}: {status}")
        if d.error:
            lines.append(f"   ours failed to import: {d.error}")
        lines.extend(f"   missing: {m}" for m in d.missing)
        lines.extend(f"   differs: {i}" for i in d.issues)
        if verbose:
            lines.extend(f"   note:    {n}" for n in d.notes)
    lines.append(f"\n{len(diffs)} modules compared, {total} gap(s) in total.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the report (or JSON with `--json`); exit status 0 always."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--notes", action="store_true", help="also print notes")
    parser.add_argument("--module", default="", help="only modules with this prefix")
    args = parser.parse_args(argv)
    diffs = [d for d in collect() if d.ref.startswith(args.module)]
    if args.json:
        print(json.dumps([d.__dict__ for d in diffs], indent=2))
    else:
        print(render(diffs, verbose=args.notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
