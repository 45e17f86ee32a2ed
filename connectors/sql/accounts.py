"""API accounts, fleets (tenants), recurring departures and idempotency keys in the SQL store.

Tokens are never stored: an account row keeps the SHA-256 of its token. Tokens are 256-bit
random strings, so a fast hash is enough (a slow password hash protects guessable secrets).
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, get_args

from sqlalchemy import delete, select

from aggregator.domain import Account, RecurringDeparture, Role, VehicleFleet
from connectors.sql.repository import SqlRepository, upsert
from connectors.sql.schema import (
    AccountRow,
    FleetMemberRow,
    IdempotencyRow,
    RecurringDepartureRow,
    VehicleFleetRow,
)


def _account(row: AccountRow) -> Account:
    if row.role not in get_args(Role):
        raise ValueError(f"account {row.account_id}: unknown role {row.role!r} in the store")
    return Account(
        row.account_id,
        row.name,
        row.role,  # type: ignore[arg-type]
        row.created_at,
        frozenset(row.fleet_ids),
    )


class SqlAccounts:
    """Accounts, fleets and what hangs off them, on the repository's database."""

    def __init__(self, repo: SqlRepository) -> None:
        self._repo = repo

    # ------------------------------------------------------------------ accounts
    def create_account(self, account: Account, token_sha256: str) -> None:
        """Insert a new account; ``ValueError`` if the id is taken."""
        with self._repo.writer.begin() as s:
            if s.get(AccountRow, account.account_id) is not None:
                raise ValueError(f"account {account.account_id} exists")
            s.add(
                AccountRow(
                    account_id=account.account_id,
                    name=account.name,
                    role=account.role,
                    token_sha256=token_sha256,
                    fleet_ids=sorted(account.fleet_ids),
                    created_at=account.created_at,
                )
            )

    def account_by_token(self, token_sha256: str) -> Account | None:
        with self._repo.reader.begin() as s:
            row = s.scalar(select(AccountRow).where(AccountRow.token_sha256 == token_sha256))
            return _account(row) if row is not None else None

    def account(self, account_id: str) -> Account | None:
        with self._repo.reader.begin() as s:
            row = s.get(AccountRow, account_id)
            return _account(row) if row is not None else None

    def accounts(self) -> list[Account]:
        with self._repo.reader.begin() as s:
            rows = s.scalars(select(AccountRow).order_by(AccountRow.account_id))
            return [_account(r) for r in rows]

    def delete_account(self, account_id: str) -> bool:
        with self._repo.writer.begin() as s:
            result = s.execute(delete(AccountRow).where(AccountRow.account_id == account_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ fleets
    def save_fleet(self, fleet: VehicleFleet) -> None:
        with self._repo.writer.begin() as s:
            row = {"fleet_id": fleet.fleet_id, "name": fleet.name}
            upsert(s, VehicleFleetRow, [row], "fleet_id")

    def fleets(self) -> list[VehicleFleet]:
        with self._repo.reader.begin() as s:
            rows = s.scalars(select(VehicleFleetRow).order_by(VehicleFleetRow.fleet_id))
            return [VehicleFleet(r.fleet_id, r.name) for r in rows]

    def fleet(self, fleet_id: str) -> VehicleFleet | None:
        with self._repo.reader.begin() as s:
            row = s.get(VehicleFleetRow, fleet_id)
            return VehicleFleet(row.fleet_id, row.name) if row is not None else None

    def delete_fleet(self, fleet_id: str) -> bool:
        """Delete an empty fleet; ``ValueError`` while vehicles belong to it."""
        with self._repo.writer.begin() as s:
            member = s.scalar(select(FleetMemberRow).where(FleetMemberRow.fleet_id == fleet_id))
            if member is not None:
                raise ValueError(f"fleet {fleet_id} still has vehicle {member.vehicle_id}")
            result = s.execute(delete(VehicleFleetRow).where(VehicleFleetRow.fleet_id == fleet_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def set_vehicle_fleet(self, vehicle_id: str, fleet_id: str | None) -> None:
        with self._repo.writer.begin() as s:
            if fleet_id is None:
                s.execute(delete(FleetMemberRow).where(FleetMemberRow.vehicle_id == vehicle_id))
            else:
                row = {"vehicle_id": vehicle_id, "fleet_id": fleet_id}
                upsert(s, FleetMemberRow, [row], "vehicle_id")

    def vehicle_fleets(self) -> dict[str, str]:
        """vehicle id -> fleet id, for every vehicle in a fleet."""
        with self._repo.reader.begin() as s:
            return {r.vehicle_id: r.fleet_id for r in s.scalars(select(FleetMemberRow))}

    # ------------------------------------------------------------------ recurring departures
    def save_recurring(self, rule: RecurringDeparture) -> None:
        row = {
            "vehicle_id": rule.vehicle_id,
            "weekdays": sorted(rule.weekdays),
            "local_time": rule.at.isoformat(timespec="minutes"),
            "timezone": rule.timezone,
            "target_soc": rule.target_soc,
            "energy_kwh": rule.energy_kwh,
            "min_soc": rule.min_soc,
        }
        with self._repo.writer.begin() as s:
            upsert(s, RecurringDepartureRow, [row], "vehicle_id")

    def recurring(self) -> list[RecurringDeparture]:
        with self._repo.reader.begin() as s:
            order = RecurringDepartureRow.vehicle_id
            rows = s.scalars(select(RecurringDepartureRow).order_by(order))
            return [
                RecurringDeparture(
                    r.vehicle_id,
                    frozenset(r.weekdays),
                    time.fromisoformat(r.local_time),
                    r.timezone,
                    r.target_soc,
                    r.energy_kwh,
                    r.min_soc,
                )
                for r in rows
            ]

    def delete_recurring(self, vehicle_id: str) -> bool:
        with self._repo.writer.begin() as s:
            result = s.execute(
                delete(RecurringDepartureRow).where(RecurringDepartureRow.vehicle_id == vehicle_id)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ idempotency keys
    def idempotent_response(self, account_id: str, key: str) -> tuple[str, int, Any] | None:
        """(request fingerprint, status code, body) stored for this key, if any."""
        with self._repo.reader.begin() as s:
            row = s.get(IdempotencyRow, (account_id, key))
            return (row.fingerprint, row.status_code, row.body) if row is not None else None

    def save_idempotent_response(
        self,
        account_id: str,
        key: str,
        fingerprint: str,
        status_code: int,
        body: Any,
        at: datetime,
    ) -> None:
        with self._repo.writer.begin() as s:
            s.merge(
                IdempotencyRow(
                    account_id=account_id,
                    key=key,
                    fingerprint=fingerprint,
                    status_code=status_code,
                    body=body,
                    created_at=at,
                )
            )
