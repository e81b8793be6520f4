"""Failure counting and throttling for every password sign-in: the users' `/login/` and the operators' `/admin/login/`.

One wrapper around a sign-in view's POST, so both pages count failures in the same counters and refuse a guesser the
same way (429 with Retry-After, the password not checked at all). Staff accounts are the ones an attacker wants;
the admin's sign-in was once left out.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .throttling import LOGIN_BY_ADDRESS, LOGIN_BY_USERNAME, client_address


def sign_in_username(request: HttpRequest) -> str:
    return str(request.POST.get("username", "")).strip().lower()[:254]


def sign_in_throttled(
    request: HttpRequest, sign_in: Callable[[], HttpResponse], refuse: Callable[[int], HttpResponse]
) -> HttpResponse:
    """Answer a sign-in POST with `sign_in()` unless the username or address is over its limit (then `refuse(wait)`,
    a 429); a POST that leaves the user signed out counts as a failure for both."""
    username, address = sign_in_username(request), client_address(request)
    waits = [LOGIN_BY_USERNAME.retry_after(username), LOGIN_BY_ADDRESS.retry_after(address)]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        response = refuse(wait)
        response["Retry-After"] = str(wait)
        return response
    response = sign_in()
    if request.user.is_authenticated:
        # The owner got in: their username starts afresh (the address keeps its count, it may be shared).
        LOGIN_BY_USERNAME.clear(username)
    else:
        LOGIN_BY_USERNAME.record(username)
        LOGIN_BY_ADDRESS.record(address)
    return response
