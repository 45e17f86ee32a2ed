"""`aggregator accounts create-operator`: the first operator's key, printed once, hashed at rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aggregator.api.auth import token_sha256
from connectors.sql import open_repository
from connectors.sql.accounts import SqlAccounts


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "aggregator",
            "accounts",
            "create-operator",
            "--config",
            str(config),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_first_operator_gets_a_key_that_only_the_hash_of_is_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    config = tmp_path / "aggregator.yaml"
    config.write_text(f"database_url: {url}\n")
    made = cli(config, "--id", "alice", "--name", "Alice")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("agg_") and len(token) > 40
    repo = open_repository(url)
    try:
        account = SqlAccounts(repo).account_by_token(token_sha256(token))
        assert account is not None and (account.account_id, account.role) == ("alice", "operator")
        with repo.engine.connect() as conn:
            dump = "\n".join(str(row) for row in conn.exec_driver_sql("SELECT * FROM accounts"))
        assert token not in dump  # only its SHA-256
    finally:
        repo.dispose()
    again = cli(config, "--id", "alice")
    assert again.returncode == 2 and again.stderr.strip() == "--id: account alice exists"
    bad = cli(config, "--id", "../root")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("--id: must be 1-128 letters")
