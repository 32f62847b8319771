"""The endpoint client's errors, which are also `requests`' errors.

Code written for the reference catches `requests.exceptions.RequestException`
(and `requests.exceptions.ConnectionError`) around the client functions of
`proxystore.endpoint.client`, so their errors subclass those as well as our own
`EndpointError`. Importing `requests` takes a tenth of a second, so the client
imports this module only when it has an error to raise (or a caller names one of
these classes): requests that succeed never load `requests`.
"""

from __future__ import annotations

import requests
import requests.structures

from proxystore.endpoint.exceptions import EndpointError

__all__ = ["EndpointConnectionError", "RequestException", "error_response"]


class RequestException(EndpointError, requests.exceptions.RequestException):
    """Raised when an endpoint answers a request with an error status.

    Also a `requests.exceptions.RequestException` (as in the reference), whose
    `response` holds the status, headers and body of the answer.

    Attributes:
        status_code: HTTP status of the answer (`None` when there was none).
        error: Name of the endpoint error behind the answer, when it gave one.
        text: Body of the answer.
    """

    __module__ = "proxystore.endpoint.client"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        text: str = "",
        response: requests.Response | None = None,
    ) -> None:
        super().__init__(message, response=response)
        self.status_code = status_code
        self.error = error
        self.text = text


class EndpointConnectionError(
    RequestException, requests.exceptions.ConnectionError, ConnectionError
):
    """Raised when no connection to the endpoint's address can be made.

    Also a `requests.exceptions.ConnectionError` and a builtin `ConnectionError`.
    """

    __module__ = "proxystore.endpoint.client"


def error_response(
    url: str, status: int, error: str | None, body: bytes
) -> requests.Response:
    """A `requests.Response` holding an endpoint's error answer.

    Args:
        url: The URL requested.
        status: HTTP status of the answer.
        error: The endpoint's error header (`None` when it sent none).
        body: Body of the answer.
    """
    response = requests.Response()
    response.status_code = status
    response.url = url
    response.encoding = "utf-8"
    response._content = body
    response.headers = requests.structures.CaseInsensitiveDict(
        {} if error is None else {"X-ProxyStore-Error": error}
    )
    return response
