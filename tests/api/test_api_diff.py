"""The signature rules of `scripts.api_diff` (ours must accept every reference call)."""

from __future__ import annotations

from scripts.api_diff import Sig, compare_signatures, diff_module

PK = "POSITIONAL_OR_KEYWORD"
KW = "KEYWORD_ONLY"
PO = "POSITIONAL_ONLY"


def _issues(ref: Sig, ours: Sig) -> list[str]:
    return compare_signatures(ref, ours)[0]


def test_identical_and_widened_signatures_are_compatible() -> None:
    ref: Sig = [["key", PK, None], ["evict", KW, "False"]]
    assert _issues(ref, ref) == []
    # A keyword-only parameter may be positional-or-keyword in ours (a note).
    issues, notes = compare_signatures(ref, [["key", PK, None], ["evict", PK, "False"]])
    assert issues == []
    assert notes == ["'evict' is POSITIONAL_OR_KEYWORD (reference: KEYWORD_ONLY)"]
    # Ours may add optional keyword-only parameters.
    assert _issues(ref, [*ref, ["timeout", KW, "None"]]) == []


def test_renamed_narrowed_or_extra_required_parameters_are_gaps() -> None:
    ref: Sig = [["buffer", PK, None]]
    assert _issues(ref, [["data", PK, None]]) == [
        "missing parameter 'buffer' (POSITIONAL_OR_KEYWORD)",
        "extra required parameter 'data' (POSITIONAL_OR_KEYWORD)",
    ]
    assert _issues([["x", PK, "False"]], [["x", KW, "False"]]) == [
        "'x' is KEYWORD_ONLY (reference: POSITIONAL_OR_KEYWORD)"
    ]
    assert _issues([["x", PK, "1"]], [["x", PK, "2"]]) == [
        "'x' default 2 (reference: 1)"
    ]
    assert _issues([["kw", "VAR_KEYWORD", None]], []) == ["does not accept **kw"]


def test_positional_only_parameters_match_by_position() -> None:
    assert _issues([["function", PO, None]], [["fn", PO, None]]) == []


def test_diff_module_reports_missing_names_and_members() -> None:
    ref = {
        "names": {
            "Gone": {"kind": "class", "sig": None},
            "T": {"kind": "typevar"},
            "Kept": {
                "kind": "class",
                "sig": [],
                "members": {
                    "close": {"kind": "method", "sig": [], "origin": "proxystore.m"}
                },
                "fields": ["name"],
                "instance_attrs": ["store"],
            },
        }
    }
    ours = {
        "names": {
            "Kept": {
                "kind": "class",
                "sig": [],
                "members": {},
                "fields": ["name"],
                "instance_attrs": [],
            }
        }
    }
    diff = diff_module("p.m", "p.m", ref, ours)
    assert diff.missing == ["Gone (class)"]
    assert diff.issues == [
        "Kept.close: missing method",
        "Kept.store: missing instance attribute",
    ]
    assert diff.notes == ["T (typevar)"]
    assert diff.gap_count == 3
