"""Every input/output example of Microsoft's expression reference, plus error messages.

Source: MicrosoftDocs/entra-docs docs/identity/app-provisioning/functions-for-customizing-application-data.md
Each case id names the function (and the doc's example) it comes from.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from xts_pipeline.expressions import (
    IGNORE_FLOW,
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
    UnknownFunctionError,
    compile,
    evaluate,
)

HIRE = {"StatusHireDate": "2012-03-16-07:00"}
TEL_RX = '"\\\\+(?<isdCode>\\\\d* )(?<phoneNumber>\\\\d{10})"'  # as written in the doc

DOC_EXAMPLES = [
    # Append
    ("Append-suffix", 'Append([userPrincipalName], ".test")', {"userPrincipalName": "John.Doe@contoso.com"},
     "John.Doe@contoso.com.test"),
    # BitAnd
    ("BitAnd-hex", "BitAnd(&HF, &HF7)", {}, 7),
    # CBool
    ("CBool-equal", "CBool([attribute1] = [attribute2])", {"attribute1": "a", "attribute2": "a"}, True),
    ("CBool-different", "CBool([attribute1] = [attribute2])", {"attribute1": "a", "attribute2": "b"}, False),
    # CDate
    ("CDate-example1", "CDate([StatusHireDate])", {"StatusHireDate": "2020-03-16-07:00"}, "3/16/2020 7:00:00 AM"),
    ("CDate-example2", 'CDate("2021-06-30+08:00")', {}, "6/29/2021 4:00:00 PM"),
    ("CDate-example3", 'CDate("2009-06-15T01:45:30-07:00")', {}, "6/15/2009 8:45:30 AM"),
    # Coalesce
    ("Coalesce-mail-or-upn", "Coalesce([mail],[userPrincipalName])",
     {"mail": None, "userPrincipalName": "John.Doe@contoso.com"}, "John.Doe@contoso.com"),
    ("Coalesce-default", 'Coalesce([mail],[userPrincipalName],"none")', {}, "none"),
    ("Coalesce-all-null", "Coalesce([mail],[userPrincipalName])", {}, None),
    # ConvertToBase64 / ConvertToUTF8Hex
    ("ConvertToBase64-hello", 'ConvertToBase64("Hello world!")', {}, "SABlAGwAbABvACAAdwBvAHIAbABkACEA"),
    ("ConvertToUTF8Hex-hello", 'ConvertToUTF8Hex("Hello world!")', {}, "48656C6C6F20776F726C6421"),
    # Count
    ("Count-multivalued", "Count([proxyAddresses])", {"proxyAddresses": ["a", "b", "c"]}, 3),
    # CStr
    ("CStr-dn", "CStr([dn])", {"dn": "cn=Joe,dc=contoso,dc=com"}, "cn=Joe,dc=contoso,dc=com"),
    ("CStr-boolean", "CStr([accountEnabled])", {"accountEnabled": True}, "True"),
    # DateAdd table
    ("DateAdd-7-days", 'DateAdd("d", 7, CDate([StatusHireDate]))', HIRE, "3/23/2012 7:00:00 AM"),
    ("DateAdd-minus-10-days", 'DateAdd("d", -10, CDate([StatusHireDate]))', HIRE, "3/6/2012 7:00:00 AM"),
    ("DateAdd-2-weeks", 'DateAdd("ww", 2, CDate([StatusHireDate]))', HIRE, "3/30/2012 7:00:00 AM"),
    ("DateAdd-10-months", 'DateAdd("m", 10, CDate([StatusHireDate]))', HIRE, "1/16/2013 7:00:00 AM"),
    ("DateAdd-2-years", 'DateAdd("yyyy", 2, CDate([StatusHireDate]))', HIRE, "3/16/2014 7:00:00 AM"),
    # DateDiff table
    ("DateDiff-positive-days", 'DateDiff("d", CDate("2021-08-18+08:00"), CDate("2021-08-31+08:00"))', {}, 13),
    ("DateDiff-negative-days", 'DateDiff("d", CDate("8/25/2021 5:41:18 PM"), CDate("2012-03-16-07:00"))', {}, -3449),
    ("DateDiff-weeks", 'DateDiff("ww", CDate("8/25/2021 5:41:18 PM"), CDate("2012-03-16-07:00"))', {}, -493),
    ("DateDiff-months", 'DateDiff("m", CDate("8/25/2021 5:41:18 PM"), CDate("2012-03-16-07:00"))', {}, -113),
    ("DateDiff-years", 'DateDiff("yyyy", CDate("8/25/2021 5:41:18 PM"), CDate("2012-03-16-07:00"))', {}, -9),
    ("DateDiff-same", 'DateDiff("d", CDate("2021-08-31+08:00"), CDate("2021-08-31+08:00"))', {}, 0),
    ("DateDiff-hours", 'DateDiff("h", CDate("2021-08-24"), CDate("2021-08-25"))', {}, 24),
    ("DateDiff-minutes", 'DateDiff("n", CDate("2021-08-24"), CDate("2021-08-25"))', {}, 1440),
    ("DateDiff-seconds", 'DateDiff("s", CDate("2021-08-24"), CDate("2021-08-25"))', {}, 86400),
    ("DateDiff-attribute-strings", 'DateDiff("d", [a], [b])', {"a": "2021-08-18+08:00", "b": "2021-08-31+08:00"}, 13),
    # DateFromNum: "Returns a DateTime representing January 1, 2012 at 11:00PM"
    ("DateFromNum-literal", "DateFromNum(129699324000000000)", {}, "1/1/2012 11:00:00 PM"),
    ("DateFromNum-attribute", "DateFromNum([lastLogonTimestamp])", {"lastLogonTimestamp": "129699324000000000"},
     "1/1/2012 11:00:00 PM"),
    # FormatDateTime
    ("FormatDateTime-servicenow", 'FormatDateTime([extensionAttribute1], , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")',
     {"extensionAttribute1": "20150123105347.1Z"}, "2015-01-23"),
    # IgnoreFlowIfNullOrEmpty
    ("IgnoreFlowIfNullOrEmpty-null", "IgnoreFlowIfNullOrEmpty([department])", {}, IGNORE_FLOW),
    ("IgnoreFlowIfNullOrEmpty-empty", "IgnoreFlowIfNullOrEmpty([department])", {"department": ""}, IGNORE_FLOW),
    ("IgnoreFlowIfNullOrEmpty-value", "IgnoreFlowIfNullOrEmpty([department])", {"department": "Sales"}, "Sales"),
    ("IgnoreFlowIfNullOrEmpty-switch-nomatch",
     'IgnoreFlowIfNullOrEmpty(Switch([prefix], "", "3443", "Dr.", "3444", "Prof.", "3445", "Prof. Dr."))',
     {"prefix": "9999"}, IGNORE_FLOW),
    ("IgnoreFlowIfNullOrEmpty-switch-match",
     'IgnoreFlowIfNullOrEmpty(Switch([prefix], "", "3443", "Dr.", "3444", "Prof.", "3445", "Prof. Dr."))',
     {"prefix": "3445"}, "Prof. Dr."),
    # IIF
    ("IIF-country-usa", 'IIF([country]="USA",[country],[department])', {"country": "USA", "department": "D"}, "USA"),
    ("IIF-country-other", 'IIF([country]="USA",[country],[department])', {"country": "FR", "department": "D"}, "D"),
    ("IIF-and", 'IIF([country]="USA",IIF([state]="CA","True","False"),"False")', {"country": "USA", "state": "CA"},
     "True"),
    ("IIF-and-false", 'IIF([country]="USA",IIF([state]="CA","True","False"),"False")',
     {"country": "USA", "state": "WA"}, "False"),
    ("IIF-or", 'IIF([country]="USA","True",IIF([state]="CA","True","False"))', {"country": "FR", "state": "CA"},
     "True"),
    ("IIF-or-false", 'IIF([country]="USA","True",IIF([state]="CA","True","False"))',
     {"country": "FR", "state": "WA"}, "False"),
    ("IIF-switch-workaround", 'Switch([country],[country],"","Other")', {}, "Other"),
    ("IIF-switch-workaround-present", 'Switch([country],[country],"","Other")', {"country": "NL"}, "NL"),
    ("IIF-usertype-instr", 'IIF(InStr([userPrincipalName], "@partners") > 0,"Guest","Member")',
     {"userPrincipalName": "a@partners.contoso.com"}, "Guest"),
    # InStr
    ("InStr-quick", 'InStr("The quick brown fox","quick")', {}, 5),
    ("InStr-binary-start", 'InStr("repEated","e",3,vbBinaryCompare)', {}, 7),
    ("InStr-text-compare", 'InStr("repEated","e",3,vbTextCompare)', {}, 4),
    ("InStr-not-found", 'InStr("abc","z")', {}, 0),
    # IsNull / IsNullOrEmpty / IsPresent / IsString
    ("IsNull-absent", "IsNull([displayName])", {}, True),
    ("IsNull-present", "IsNull([displayName])", {"displayName": ""}, False),
    ("IsNullOrEmpty-absent", "IsNullOrEmpty([displayName])", {}, True),
    ("IsNullOrEmpty-empty", "IsNullOrEmpty([displayName])", {"displayName": ""}, True),
    ("IsNullOrEmpty-value", "IsNullOrEmpty([displayName])", {"displayName": "x"}, False),
    ("IsPresent-value", "IsPresent([displayName])", {"displayName": "x"}, True),
    ("IsPresent-empty", "IsPresent([displayName])", {"displayName": ""}, False),
    ("IsPresent-switch-first-manager",
     "Switch(IsPresent([directManager]),[directManager], IsPresent([skiplevelManager]),[skiplevelManager], "
     "IsPresent([director]),[director])", {"directManager": "m1"}, "m1"),
    ("IsString-text", "IsString([displayName])", {"displayName": "x"}, True),
    ("IsString-number", "IsString(BitAnd(1, 1))", {}, False),
    # Item
    ("Item-first", "Item([proxyAddresses], 1)", {"proxyAddresses": ["SMTP:a@x", "smtp:b@x"]}, "SMTP:a@x"),
    ("Item-beyond", "Item([proxyAddresses], 3)", {"proxyAddresses": ["SMTP:a@x", "smtp:b@x"]}, None),
    # Join
    ("Join-multivalued", 'Join(";", [proxyAddresses], [mail])', {"proxyAddresses": ["a", "b"], "mail": "c"}, "a;b;c"),
    ("Join-comma-last-first", 'Join(", ", "", [surname], [givenName])', {"givenName": "John", "surname": "Doe"},
     "Doe, John"),
    # Left
    ("Left-john", 'Left("John Doe", 3)', {}, "Joh"),
    ("Left-zero", 'Left("John Doe", 0)', {}, ""),
    ("Left-negative", 'Left("John Doe", -1)', {}, "John Doe"),
    ("Left-null", "Left([missing], 3)", {}, ""),
    ("Left-short", 'Left("Jo", 3)', {}, "Jo"),
    # Mid
    ("Mid-alias", "Append(Mid([givenName], 1, 3), Mid([surname], 1, 5))", {"givenName": "John", "surname": "Doe"},
     "JohDoe"),
    ("Mid-beyond-end", 'Mid("abcdef", 4, 10)', {}, "def"),
    # NormalizeDiacritics
    ("NormalizeDiacritics-zoe", "NormalizeDiacritics([givenName])", {"givenName": "Zoë"}, "Zoe"),
    ("NormalizeDiacritics-table-multi", 'NormalizeDiacritics("Æsir Øster Straße Łódź")', {}, "AEsir OEster Strasse Lodz"),
    # Not
    ("Not-true", 'Not("True")', {}, False),
    ("Not-false", 'Not("False")', {}, True),
    ("Not-other", 'Not("anything")', {}, True),
    # NumFromDate — Workday and SuccessFactors examples; 2021-01-01T07:59:59Z in AD ticks
    ("NumFromDate-workday",
     'NumFromDate(Join("", FormatDateTime([ContractEndDate], ,"yyyy-MM-ddzzz", "yyyy-MM-dd"), " 23:59:59-08:00"))',
     {"ContractEndDate": "2020-12-31-08:00"}, 132539615990000000),
    ("NumFromDate-successfactors",
     'NumFromDate(Join("",FormatDateTime([endDate], ,"M/d/yyyy hh:mm:ss tt","yyyy-MM-dd")," 23:59:59-08:00"))',
     {"endDate": "12/31/2020 09:15:00 AM"}, 132539615990000000),
    # PCase table
    ("PCase-default-separators", "PCase([firstName])", {"firstName": "PABLO GONSALVES (SECOND)"},
     "Pablo Gonsalves (Second)"),
    ("PCase-custom-separators", "PCase([lastName],\" '-\")", {"lastName": "PINTO-DE'SILVA"}, "Pinto-De'Silva"),
    ("PCase-nested-join", 'PCase(Join(" ",[firstName],[lastName]))', {"firstName": "GREGORY", "lastName": "JAMES"},
     "Gregory James"),
    # RemoveDuplicates
    ("RemoveDuplicates-proxy", "RemoveDuplicates([proxyAddresses])", {"proxyAddresses": ["a", "b", "a"]}, ["a", "b"]),
    # Replace examples 1-6
    ("Replace-1-old-replacement", 'Replace([BusinessTitle],"Product Developer", , , "Software Engineer", , )',
     {"BusinessTitle": "Product Developer"}, "Software Engineer"),
    ("Replace-2-template", 'Replace([UserID],"<username>", , , , , "<username>@contoso.com")', {"UserID": "jsmith"},
     "jsmith@contoso.com"),
    ("Replace-3-regex-group-substitution", f'Replace([telephoneNumber], , {TEL_RX}, , "${{phoneNumber}}", , )',
     {"telephoneNumber": "+91 9998887777"}, "9998887777"),
    # The doc prints 19998887777, but its pattern [()\s-]+ does not match "+" (in .NET either).
    ("Replace-3-regex-collapse", 'Replace([mobile], , "[()\\\\s-]+", , "", , )', {"mobile": "+1 (999) 888-7777"},
     "+19998887777"),
    ("Replace-4-group-replacement", 'Replace([AddressLineData], ,"(?<streetNumber>^\\\\d*)","streetNumber", "888", , )',
     {"AddressLineData": "545 Tremont Street"}, "888 Tremont Street"),
    ("Replace-4-strip-suffix", 'Replace([userPrincipalName], , "(?<Suffix>@(.)*)", "Suffix", "", , )',
     {"userPrincipalName": "jsmith@contoso.com"}, "jsmith"),
    ("Replace-5-replacement-attribute",
     f'Replace([telephoneNumber], , {TEL_RX}, "phoneNumber" , , [mobile], )',
     {"telephoneNumber": "", "mobile": "+91 8887779999"}, "8887779999"),
    ("Replace-5-source-has-value",
     f'Replace([telephoneNumber], , {TEL_RX}, "phoneNumber" , , [mobile], )',
     {"telephoneNumber": "+1 5551234567", "mobile": "+91 8887779999"}, "+1 5551234567"),
    ("Replace-6-remove-letters", 'Replace([mailNickname], , "[a-zA-Z_]*", , "", , )', {"mailNickname": "john_doe72"},
     "72"),
    ("Replace-strip-domain", 'Replace([mail], "@contoso.com", , ,"", ,)', {"mail": "john.doe@contoso.com"}, "john.doe"),
    # Split
    ("Split-permission-sets", 'Split([extensionAttribute5], ",")',
     {"extensionAttribute5": "PermissionSetOne, PermissionSetTwo"}, ["PermissionSetOne", "PermissionSetTwo"]),
    # StripSpaces
    ("StripSpaces-basic", 'StripSpaces(" a b  c ")', {}, "abc"),
    # Switch
    ("Switch-state-timezone",
     'Switch([state], "Australia/Sydney", "NSW", "Australia/Sydney","QLD", "Australia/Brisbane", "SA", '
     '"Australia/Adelaide")', {"state": "QLD"}, "Australia/Brisbane"),
    ("Switch-state-default",
     'Switch([state], "Australia/Sydney", "NSW", "Australia/Sydney","QLD", "Australia/Brisbane", "SA", '
     '"Australia/Adelaide")', {"state": "VIC"}, "Australia/Sydney"),
    ("Switch-tolower-note", 'Switch(ToLower([statusFlag]), "0", "true", "1", "false", "0")', {"statusFlag": "TRUE"}, "1"),
    ("Switch-empty-key-caution", 'Switch([statusFlag], "Default Value", "true", "1", "", "0")', {"statusFlag": ""}, "0"),
    ("Switch-case-sensitive", 'Switch([statusFlag], "Default Value", "true", "1", "", "0")', {"statusFlag": "TRUE"},
     "Default Value"),
    ("Switch-lowercase-name-in-doc", 'switch([companyName], "External", "Company A", "A", "Company B", "B")',
     {"companyName": "Company B"}, "B"),
    ("IIF-switch-resolution", 'IIF([companyName] = "Company A", "A", IIF([companyName] = "Company B", "B", "External"))',
     {"companyName": "Company C"}, "External"),
    # ToLower / ToUpper
    ("ToLower-upn",
     'ToLower(Join("@", NormalizeDiacritics(StripSpaces(Join(".",  [PreferredFirstName], [PreferredLastName]))), '
     '"contoso.com"))', {"PreferredFirstName": "John", "PreferredLastName": "Smith"}, "john.smith@contoso.com"),
    ("ToLower-culture-tr", 'ToLower("TITLE", "tr-TR")', {}, "tıtle"),
    ("ToUpper-invariant", 'ToUpper("straße")', {}, "STRAßE"),
    ("ToUpper-culture-tr", 'ToUpper("istanbul", "tr-TR")', {}, "İSTANBUL"),
    # Word
    ("Word-brown", 'Word("The quick brown fox",3," ")', {}, "brown"),
    ("Word-separators", 'Word("This,string!has&many separators",3,",!&#")', {}, "has"),
    ("Word-too-few", 'Word("one two",3," ")', {}, ""),
    ("Word-number-below-1", 'Word("one two",0," ")', {}, ""),
    ("Word-null", 'Word([missing],1," ")', {}, ""),
    # Examples section
    ("Examples-generate-alias", "Append(Mid([givenName], 1, 3), Mid([surname], 1, 5))",
     {"givenName": "John", "surname": "Doe"}, "JohDoe"),
]


@pytest.mark.parametrize(("expression", "attrs", "expected"), [c[1:] for c in DOC_EXAMPLES],
                         ids=[c[0] for c in DOC_EXAMPLES])
def test_documented_example(expression, attrs, expected):
    assert evaluate(expression, attrs) == expected


def test_examples_object_id_to_number():
    # The doc's sample output was produced from a different (anonymised) object id, so we check
    # the documented recipe: "1000" followed by the digits of the UTF-8 hex of the id.
    oid = "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
    out = evaluate('Join("", 1000, Replace(ConvertToUTF8Hex([objectId]), , "[a-zA-Z_]*", , "", , ))', {"objectId": oid})
    assert out == "1000" + re.sub("[A-Z]", "", oid.encode().hex().upper())
    assert out.isdigit()


def test_datediff_workday_switch_example():
    expr = ('Switch([Active], , \n  "1", IIF(DateDiff("d", Now(), CDate([StatusHireDate])) > 5, "False", "True"), \n'
            '  "0", "False")')
    soon = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert evaluate(expr, {"Active": "1", "StatusHireDate": soon}) == "True"
    assert evaluate(expr, {"Active": "1", "StatusHireDate": later}) == "False"
    assert evaluate(expr, {"Active": "0", "StatusHireDate": later}) == "False"


def test_guid_is_random_uuid():
    a, b = evaluate("Guid()", {}), evaluate("Guid()", {})
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", a)
    assert a != b


def test_now_format():
    out = evaluate("Now()", {})
    assert re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2} (AM|PM)", out)


@pytest.mark.parametrize(("expr", "checks"), [
    ("RandomString(6,3,0,0,3)", {"len": 6, "digits": 3, "lower": 3}),
    ('RandomString(10,2,2,2,1,"?,")', {"len": 10, "digits": 2, "special": 2, "upper": 2, "lower": 1}),
], ids=["RandomString-example1", "RandomString-example2"])
def test_random_string(expr, checks):
    for _ in range(20):
        s = evaluate(expr, {})
        assert len(s) == checks["len"]
        assert sum(c.isdigit() for c in s) >= checks.get("digits", 0)
        assert sum(c.isupper() for c in s) >= checks.get("upper", 0)
        assert sum(c.islower() for c in s) >= checks.get("lower", 0)
        assert sum(not c.isalnum() for c in s) >= checks.get("special", 0)
        assert "?" not in s and "," not in s if "?," in expr else True


def test_redact_flags_expression():
    expr = compile("Redact([userPrincipalName])")
    assert expr.redacted and expr.evaluate({"userPrincipalName": "a@b"}) == "a@b"
    assert not compile("ToLower([userPrincipalName])").redacted


def test_attributes_and_source():
    expr = compile('Join("@", [extension_abc_xtsSourceTenantId], ToLower([mail]), [manager.displayName])')
    assert expr.attributes == {"extension_abc_xtsSourceTenantId", "mail", "manager.displayName"}
    assert expr.source.startswith("Join(")


def test_aliases_rename_attributes():
    expr = compile("ToUpper([mobile])", aliases={"mobile": "mobilePhone"})
    assert expr.attributes == {"mobilePhone"}
    assert expr.evaluate({"mobilePhone": "abc"}) == "ABC"


def test_string_escapes():
    assert evaluate('Append("Company name: \\"Contoso\\"", "")', {}) == 'Company name: "Contoso"'
    assert evaluate('Append("a\\\\b", "")', {}) == "a\\b"


def test_multiline_and_whitespace():
    assert evaluate('Join(\n  " ",\n  [a],\n  [b]\n)', {"a": "x", "b": "y"}) == "x y"


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize(("expr", "cls", "line", "column", "fragment"), [
    ('Joinn(",", [a])', UnknownFunctionError, 1, 1, "did you mean 'Join'?"),
    ('Join(",", Lefft([a], 2))', UnknownFunctionError, 1, 11, "did you mean 'Left'?"),
    ('Left("a")', ExpressionSyntaxError, 1, 1, "Left takes exactly 2 arguments, got 1"),
    ('Switch([a], "d", "k", "v", "k2")', ExpressionSyntaxError, 1, 1, "even number of arguments"),
    ('Join(",", [a]', ExpressionSyntaxError, 1, 14, "missing ')'"),
    ('Append([a], "x)', ExpressionSyntaxError, 1, 13, "unterminated string"),
    ('Append([a, "x")', ExpressionSyntaxError, 1, 8, "unterminated attribute"),
    ("displayName", ExpressionSyntaxError, 1, 1, "[displayName]"),
    ("SelectUniqueValue([a], [b])", UnknownFunctionError, 1, 1, "not supported"),
    ('Join(",", IgnoreFlowIfNullOrEmpty([a]))', ExpressionSyntaxError, 1, 11, "outermost"),
    ('Replace([a], "x", "y", , "z", , )', ExpressionSyntaxError, 1, 1, "oldValue and regexPattern"),
    ('Replace([a], , "(?<x>a)", "y", "z", , )', ExpressionSyntaxError, 1, 1, "not a named group"),
    ('Replace([a], , "(unclosed", , "z", , )', ExpressionSyntaxError, 1, 1, "invalid regex"),
    ('DateAdd("mm", 1, Now())', ExpressionSyntaxError, 1, 1, "'n' for minutes"),
    ("", ExpressionSyntaxError, 1, 1, "empty"),
    ("Append([a],\n  Foo([b]))", UnknownFunctionError, 2, 3, "unknown function 'Foo'"),
])
def test_compile_errors(expr, cls, line, column, fragment):
    with pytest.raises(cls) as info:
        compile(expr)
    assert (info.value.line, info.value.column) == (line, column)
    assert fragment in str(info.value)


def test_too_long():
    with pytest.raises(ExpressionSyntaxError, match="at most 10000"):
        compile("Append([a], \"" + "x" * 10_000 + "\")")


@pytest.mark.parametrize(("expr", "attrs", "fragment"), [
    ('IIF([country]="","Other",[country])', {"country": ""}, "IIF's condition reads [country]"),
    ('IIF(IsNullOrEmpty([country]),"Other",[country])', {}, "Switch([country]"),
    ('IIF(IsPresent([country]),[country],"Other")', {}, "null or empty"),
    ('Item([proxyAddresses], 0)', {"proxyAddresses": ["a"]}, "1-based"),
    ('ToLower([proxyAddresses])', {"proxyAddresses": ["a", "b"]}, "Item(...) or combine them with Join"),
    ('CDate([d])', {"d": "not a date"}, "ISO 8601"),
    ('FormatDateTime([d], , "yyyy-MM-dd", "dd.MM.yyyy")', {"d": "2020/01/01"}, "does not match the input format"),
    ('Mid([a], 0, 2)', {"a": "abc"}, "1-based"),
])
def test_evaluation_errors(expr, attrs, fragment):
    with pytest.raises(ExpressionEvaluationError) as info:
        evaluate(expr, attrs)
    assert fragment in str(info.value)
    assert info.value.line == 1 and info.value.column >= 1


def test_errors_do_not_leak_values():
    secret = "s3cr3t-value-XYZ"
    with pytest.raises(ExpressionError) as info:
        evaluate("CDate([d])", {"d": secret})
    assert secret not in str(info.value)


def test_errors_pickle_with_position():
    import pickle

    err = ExpressionSyntaxError("boom", line=2, column=5)
    back = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own object
    assert (type(back), back.line, back.column, str(back)) == (ExpressionSyntaxError, 2, 5, "boom")


# ----------------------------------------------------------------------------- semantics beyond the examples

@pytest.mark.parametrize(("expr", "attrs", "expected"), [
    ('IIF([a]="x",[b],"n")', {"a": "x"}, None),  # only the condition's attributes must be present
    ('Join("-", [a], [missing], [b])', {"a": "1", "b": "2"}, "1-2"),
    ('FormatDateTime([d], "yyyy-MM-dd", "dd.MM.yyyy")', {"d": "2024-02-29"}, "29.02.2024"),
    ('FormatDateTime([d], "AdjustToUniversal", "yyyy-MM-ddTHH:mm:sszzz", "yyyy-MM-dd HH:mm")',
     {"d": "2024-02-29T23:30:00+02:00"}, "2024-02-29 21:30"),
    ('FormatDateTime([d], , "MMMM d, yyyy", "ddd dd MMM yy")', {"d": "March 5, 2021"}, "Fri 05 Mar 21"),
    ('Replace([a], , [pattern], , "#", , )', {"a": "a1b22", "pattern": "\\d+"}, "a#b#"),
    ('Replace([a], , "(\\\\w+)@(\\\\w+)", , "$2 at $1 ($$)", , )', {"a": "joe@contoso"}, "contoso at joe ($)"),
    ("Count([missing])", {}, 0),
    ("Item([a], 1)", {"a": "single"}, "single"),
    ('DateAdd("m", 1, CDate("2021-01-31"))', {}, "2/28/2021 12:00:00 AM"),
    ('DateAdd("q", 1, CDate("2021-01-15T10:00:00Z"))', {}, "4/15/2021 10:00:00 AM"),
    ('CStr(DateDiff("d", CDate("2021-01-01"), CDate("2021-01-31")))', {}, "30"),
    ('[a] >= 10', {"a": "9"}, False),
    ('[a] <> "x"', {"a": "X"}, True),  # comparisons are case-sensitive like Switch
    ("Not([accountEnabled])", {"accountEnabled": False}, True),
    ('CBool("0")', {}, False),
    ('PCase("o\'neil mcdonald-smith")', {}, "O'Neil Mcdonald-Smith"),
    ("RemoveDuplicates([a])", {"a": None}, None),
])
def test_semantics(expr, attrs, expected):
    assert evaluate(expr, attrs) == expected


def test_invalid_culture_is_reported():
    with pytest.raises(ExpressionEvaluationError, match="RFC 4646"):
        evaluate('ToLower("A", "not a culture")', {})
