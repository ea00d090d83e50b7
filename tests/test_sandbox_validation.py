"""The sandbox's per-property value rules, called directly (the HTTP tests cover how a refusal is answered).

resources/user.md, userPrincipalName: "The general format is alias@domain, where the domain must be present in the
tenant's collection of verified domains. ... The only characters allowed are A - Z, a - z, 0 - 9, ' . - _ ! # ^ ~".
A newline is none of these, so Graph refuses a UPN (or a mail address) that ends in one; Python's `$` would have
let it through, so the sandbox matches whole values.
"""

from __future__ import annotations

import pytest

from xts_pipeline.sandbox.validation import Refusal, check_value


@pytest.mark.parametrize(("prop", "value"), [("userPrincipalName", "adele@contoso.com\n"),
                                              ("mail", "adele@contoso.com\n")])
def test_a_value_ending_in_a_newline_is_refused(prop, value):
    check_value(prop, value.rstrip("\n"), creating=True)  # the same value without it is accepted
    with pytest.raises(Refusal):
        check_value(prop, value, creating=True)
