"""The `proxystore-globus-auth` console script.

```bash
proxystore-globus-auth login                    # log in once; tokens are stored
proxystore-globus-auth login -c UUID -c UUID    # and data_access on collections
proxystore-globus-auth login -d example.edu     # require an identity from a domain
proxystore-globus-auth logout                   # revoke and delete the stored tokens
```
"""

from __future__ import annotations

import click
from globus_sdk.gare import GlobusAuthorizationParameters

from proxystore.globus.app import get_user_app
from proxystore.globus.scopes import get_all_scopes_by_resource_server

__all__ = ["cli", "login", "logout"]


@click.group()
def cli() -> None:
    """Log in to and out of Globus Auth for proxystore."""


@cli.command()
@click.option(
    "--collection",
    "-c",
    metavar="UUID",
    multiple=True,
    help="Globus collection to request data_access consent for (repeatable).",
)
@click.option(
    "--domain",
    "-d",
    metavar="DOMAIN",
    multiple=True,
    help="Require an identity from this domain (repeatable).",
)
@click.option("--force", is_flag=True, help="Log in even if valid tokens exist.")
def login(collection: tuple[str, ...], domain: tuple[str, ...], force: bool) -> None:
    """Log in with Globus Auth (Auth, relay server and Transfer scopes).

    Do not pass high-assurance GCS mapped collections to --collection: they do not
    use data_access scopes and the login would fail with "Unknown Scope"; use
    --domain for them instead.
    """
    app = get_user_app()
    app.add_scope_requirements(get_all_scopes_by_resource_server(collection))
    auth_params = None
    if domain:
        auth_params = GlobusAuthorizationParameters(
            session_message="This login needs an identity from: " + ", ".join(domain),
            session_required_single_domain=list(domain),
            prompt="login",
        )
    if force or app.login_required():
        app.login(auth_params=auth_params, force=force)
        click.echo("Logged in to Globus.")
    else:
        click.echo(
            "Valid Globus tokens already exist. To log in again, run "
            "`proxystore-globus-auth logout` first or pass --force.",
        )


@cli.command()
def logout() -> None:
    """Revoke and delete the stored Globus tokens."""
    # sweep: every token in storage, not only those of the scopes this process
    # happens to have registered (a fresh app registers none).
    get_user_app().logout(sweep=True)
    click.echo("Logged out of Globus.")
