"""Static security rules over the product code (xts_pipeline/, assets/, checks/, bench/): cheap, so they
run on every `make test` (they are unit tests) and keep the audit's findings true.

- TLS: verification is never turned off, and no HTTP call can let REQUESTS_CA_BUNDLE & co. pick the
  trust anchor (module-level `requests.get(...)` and friends run with trust_env on).
- OData: no f-string, `%` or `.format` template builds a comparison around a value outside
  xts_pipeline/graph/odata.py, whose builders escape every value; `$filter` query parameters are only
  assembled in the graph package.
- Secrets: only the MSAL credential (graph/auth.py) unwraps a SecretStr (the Graph resource passes
  secrets by reference: an EnvVar, a file, the sandbox's sandbox.json); no f-string or log call interpolates a secret, token or key; our log calls pass URLs through
  `endpoint_of` (a query can hold personal data in $filter and state in $skiptoken/$deltatoken).
- Ids in Graph URL paths are percent-encoded with `segment()`.
- YAML is parsed with the safe loader; nothing evals, unpickles or runs a shell.

Comments and docstrings are ignored (they legitimately say "never verify=False"). Each rule is also run
against a bad snippet below, so a rule that silently matches nothing fails here too.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("xts_pipeline", "assets", "checks", "bench")
SANDBOX = "xts_pipeline/sandbox/"  # the Graph stand-in: server side, it parses filters and mints tokens
ODATA_BUILDERS = "xts_pipeline/graph/odata.py"
FILTER_PARAM_ALLOWED = ("xts_pipeline/graph/",)
SECRET_UNWRAP_ALLOWED = ("xts_pipeline/graph/auth.py",)

TLS_PATTERNS = {
    "verify=False": re.compile(r"\bverify\s*=\s*False\b"),
    "verify set to a falsy value": re.compile(r"\.verify\s*=\s*(0|None|''|\"\")\s*$", re.M),
    "CERT_NONE": re.compile(r"\bCERT_NONE\b"),
    "check_hostname=False": re.compile(r"\bcheck_hostname\s*=\s*False\b"),
    "ssl._create_unverified_context": re.compile(r"_create_unverified_context\b"),
    "trust_env=True": re.compile(r"\btrust_env\s*=\s*True\b"),
    "urllib3.disable_warnings": re.compile(r"\bdisable_warnings\s*\("),
    "PYTHONHTTPSVERIFY": re.compile(r"PYTHONHTTPSVERIFY"),
    "module-level requests call (trust_env on)": re.compile(
        r"\brequests\s*\.\s*(get|post|put|patch|delete|head|options|request)\s*\("),
    "urllib.request / http.client (own TLS defaults)": re.compile(r"\burllib\.request\b|\bhttp\.client\b|\burlopen\s*\("),
}
UNSAFE_CALL_PATTERNS = {
    "yaml.load without SafeLoader": re.compile(r"\byaml\s*\.\s*(load|load_all|full_load|unsafe_load)\s*\("),
    "yaml unsafe Loader": re.compile(r"\b(FullLoader|UnsafeLoader)\b|\byaml\s*\.\s*Loader\b"),
    "eval/exec": re.compile(r"(?<![\w.])(eval|exec)\s*\("),
    "pickle/marshal loads": re.compile(r"\b(pickle|marshal|dill)\s*\.\s*loads?\s*\("),
    "shell=True": re.compile(r"\bshell\s*=\s*True\b"),
    "os.system/popen": re.compile(r"\bos\s*\.\s*(system|popen)\s*\("),
}
# An OData comparison whose right-hand side is a template slot: `eq '{}'`, `eq {}`, startswith(x,'{}'), in ('{}').
ODATA_SLOT = re.compile(
    r"\b(eq|ne|gt|ge|lt|le|has)\s+'?(\{\}|%s|%r|%\(\w+\)s)"
    r"|\b(startswith|endswith|contains)\(\s*[\w/]*\s*,\s*'?(\{\}|%s|%r)"
    r"|\bin\s*\(\s*'?(\{\}|%s|%r)"
)
SENSITIVE_NAMES = {"secret", "client_secret", "password", "token", "access_token", "refresh_token",
                   "admin_key", "authorization", "assertion", "private_key", "credential"}
URL_NAMES = {"url", "link", "next_link", "delta_link", "nextlink", "deltalink", "full_url"}
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}


def product_files() -> Iterator[tuple[str, str]]:
    """(path relative to the repo, source) for every scanned .py file."""
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")


def code_only(source: str) -> str:
    """The source with comments and string literals blanked (docstrings may say 'never verify=False')."""
    out: list[str] = []
    last = (1, 0)
    lines = source.splitlines(keepends=True)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.start > last:  # keep the layout between tokens
            out.append(_span(lines, last, tok.start))
        if tok.type in (tokenize.COMMENT, tokenize.STRING):
            out.append(" ")
        else:
            out.append(tok.string)
        last = tok.end
    return "".join(out)


def _span(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    (r1, c1), (r2, c2) = start, end
    if r1 == r2:
        return lines[r1 - 1][c1:c2] if r1 <= len(lines) else ""
    return lines[r1 - 1][c1:] + "".join(lines[r1:r2 - 1]) + (lines[r2 - 1][:c2] if r2 <= len(lines) else "")


def _line(source: str, pos: int) -> int:
    return source.count("\n", 0, pos) + 1


def pattern_hits(path: str, source: str, patterns: dict[str, re.Pattern[str]]) -> list[str]:
    code = code_only(source)
    return [f"{path}:{_line(code, m.start())}: {label}" for label, rx in patterns.items() for m in rx.finditer(code)]


def _template(node: ast.AST) -> str | None:
    """A string template with every interpolated slot as '{}' (f-strings), or the constant text."""
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id.lower()
    if isinstance(node, ast.Attribute):
        return node.attr.lower()
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value).lower()
    return ""


def odata_hits(path: str, source: str) -> list[str]:
    """Hand-built OData comparisons: f-strings, '%' and .format templates and '+' concatenations."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        text = None
        if isinstance(node, ast.JoinedStr):
            text = _template(node)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            text = _template(node.left)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = _template(node.left)
            text = left + "{}" if left is not None and _template(node.right) is None else None
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"):
            raw = _template(node.func.value)
            text = re.sub(r"\{[^{}]*\}", "{}", raw) if raw else None
        if text and ODATA_SLOT.search(text):
            hits.append(f"{path}:{node.lineno}: OData comparison built by hand: {text[:80]!r}")
    return hits


def secret_flow_hits(path: str, source: str) -> list[str]:
    """Secrets in f-strings or log calls, unescaped URLs in log calls, SecretStr unwrapped off the allow-list."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr):
            for v in node.values:
                if isinstance(v, ast.FormattedValue) and _name(v.value) in SENSITIVE_NAMES:
                    hits.append(f"{path}:{node.lineno}: f-string interpolates {_name(v.value)!r}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "get_secret_value" and not path.startswith(SECRET_UNWRAP_ALLOWED):
                hits.append(f"{path}:{node.lineno}: SecretStr unwrapped outside {SECRET_UNWRAP_ALLOWED}")
            if node.func.attr in LOG_METHODS and _name(node.func.value) in {"log", "logger", "logging", "_log"}:
                for arg in node.args[1:]:
                    name = _name(arg)
                    if name in SENSITIVE_NAMES:
                        hits.append(f"{path}:{node.lineno}: log call passes {name!r}")
                    elif name in URL_NAMES:
                        hits.append(f"{path}:{node.lineno}: log call passes {name!r}; wrap it in endpoint_of()")
    return hits


def filter_param_hits(path: str, source: str) -> list[str]:
    """`"$filter"` used as a query parameter key outside the graph package."""
    if path.startswith(FILTER_PARAM_ALLOWED):
        return []
    hits = []
    for node in ast.walk(ast.parse(source)):
        keys = []
        if isinstance(node, ast.Dict):
            keys = node.keys
        elif isinstance(node, ast.Subscript):
            keys = [node.slice]
        if any(isinstance(k, ast.Constant) and k.value == "$filter" for k in keys):
            hits.append(f"{path}:{node.lineno}: $filter parameter built outside the graph package")
    return hits


GRAPH_PATH = re.compile(r"^/?(users|groups|applications|directory|directoryRoles|policies|invitations)/")


def path_segment_hits(path: str, source: str) -> list[str]:
    """Ids put into Graph URL paths must be percent-encoded with `segment()` (or a name bound to one), so a
    directory value like `../applications/x` or `a?$filter=` can't change the route or add a query."""
    tree = ast.parse(source)
    encoded = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
               and _name(n.value.func) == "segment" for t in n.targets if isinstance(t, ast.Name)}
    hits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.JoinedStr) or not node.values:
            continue
        head = node.values[0]
        if not (isinstance(head, ast.Constant) and GRAPH_PATH.match(str(head.value))):
            continue
        for v in node.values:
            if not isinstance(v, ast.FormattedValue):
                continue
            ok = (isinstance(v.value, ast.Call) and _name(v.value.func) == "segment") or (
                isinstance(v.value, ast.Name) and v.value.id in encoded)
            if not ok:
                hits.append(f"{path}:{node.lineno}: Graph path interpolates {ast.unparse(v.value)!r} without segment()")
    return hits


def scan(rule: Callable[[str, str], list[str]], *, skip: tuple[str, ...] = ()) -> list[str]:
    return [h for path, src in product_files() if not path.startswith(skip) for h in rule(path, src)]


# ------------------------------------------------------------------------------------------- the rules
def test_tls_verification_is_never_turned_off():
    assert scan(lambda p, s: pattern_hits(p, s, TLS_PATTERNS)) == []


def test_every_session_turns_trust_env_off_and_pins_verify():
    """requests.Session() is only made where trust_env is switched off and verify is set in the same file."""
    makers = [p for p, s in product_files() if re.search(r"\bSession\s*\(", code_only(s))]
    assert makers, "the scan must see the session factories"
    for path in makers:
        code = code_only(dict(product_files())[path])
        assert re.search(r"\.trust_env\s*=\s*False", code), f"{path} makes a Session without trust_env = False"
        assert re.search(r"\.verify\s*=\s*\w", code), f"{path} makes a Session without pinning verify"


def test_no_unsafe_yaml_eval_pickle_or_shell():
    assert scan(lambda p, s: pattern_hits(p, s, UNSAFE_CALL_PATTERNS)) == []


def test_odata_values_only_go_through_the_escaping_builders():
    assert scan(odata_hits, skip=(ODATA_BUILDERS, SANDBOX)) == []
    assert scan(filter_param_hits, skip=(SANDBOX,)) == []


def test_secrets_stay_wrapped_and_out_of_messages_and_logs():
    assert scan(secret_flow_hits, skip=(SANDBOX,)) == []


def test_ids_in_graph_paths_are_percent_encoded():
    assert scan(path_segment_hits, skip=(SANDBOX, "bench/")) == []  # benches only echo the sandbox's own ids


def test_graph_client_refuses_a_session_that_would_not_verify(tmp_path):
    """A cheap runtime guard next to the scans: an injected Session can't switch verification off."""
    import requests

    from xts_pipeline.graph import GraphClient, TenantConnection
    from xts_pipeline.graph.http import make_session

    conn = TenantConnection(name="contoso", tenant_id="t", client_id="c", client_secret="s3cr3t-value")
    for verify, trust_env in ((False, False), (True, True)):
        s = requests.Session()
        s.verify, s.trust_env = verify, trust_env
        with pytest.raises(ValueError, match="TLS is always verified") as err:
            GraphClient(conn, session=s)
        assert "s3cr3t-value" not in str(err.value)
    GraphClient(conn, session=make_session()).close()  # the factory's sessions are accepted


# --------------------------------------------------------------------- the rules can fail (self-tests)
BAD = {
    "tls": 's = requests.Session()\ns.verify = False\nctx = ssl._create_unverified_context()\nrequests.get(u)\n',
    "unsafe": "import yaml\nyaml.load(text)\neval(x)\nsubprocess.run(c, shell=True)\n",
    "odata_f": 'flt = f"mail eq \'{mail}\'"\n',
    "odata_pct": 'flt = "userPrincipalName eq \'%s\'" % upn\n',
    "odata_fmt": 'flt = "startswith(displayName,\'{}\')".format(name)\n',
    "odata_add": 'flt = "id eq " + oid\n',
    "odata_in": "flt = f\"id in ('{a}','{b}')\"\n",
    "filter_param": 'params = {"$filter": text}\n',
    "secret_f": 'msg = f"bad secret {client_secret}"\n',
    "secret_log": 'log.info("token %s", token)\n',
    "url_log": 'log.info("GET %s", url)\n',
    "unwrap": "s = conn.client_secret.get_secret_value()\n",
    "raw_path": 'req = {"url": f"/users/{user_id}/manager/$ref"}\n',
}
GOOD = {
    "docstring": '"""Never verify=False, never CERT_NONE; yaml.load is unsafe."""\n# requests.get(u) in a comment\n',
    "builder": 'flt = eq("mail", mail)\nlog.info("GET %s", endpoint_of(url))\n',
    "segment": 'uid = segment(user_id)\na = f"/users/{uid}"\nb = f"groups/{segment(gid)}/members"\n',
    "not_odata": 'msg = f"user.department -eq \\"{dept}\\" holds"\nmsg2 = f"{n} equals {m}"\n',
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_rule_catches_its_bad_snippet(name):
    src = BAD[name]
    found = (pattern_hits("x.py", src, TLS_PATTERNS) + pattern_hits("x.py", src, UNSAFE_CALL_PATTERNS)
             + odata_hits("x.py", src) + filter_param_hits("x.py", src) + secret_flow_hits("x.py", src)
             + path_segment_hits("x.py", src))
    assert found, f"no rule caught the {name!r} snippet"


@pytest.mark.parametrize("name", sorted(GOOD))
def test_rules_leave_safe_code_alone(name):
    src = GOOD[name]
    found = (pattern_hits("x.py", src, TLS_PATTERNS) + pattern_hits("x.py", src, UNSAFE_CALL_PATTERNS)
             + odata_hits("x.py", src) + secret_flow_hits("x.py", src) + path_segment_hits("x.py", src))
    assert found == []
