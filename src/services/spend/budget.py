"""Monthly budgets of named clients: the 402 a client gets once its month is spent."""

from __future__ import annotations

from datetime import UTC, datetime

from src.core.clients import Client
from src.core.errors import AnthropicError
from src.services.spend.service import SpendService


def next_reset(now: datetime) -> datetime:
    """The first instant of next month, UTC: when a monthly budget starts again."""
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def over_budget(client: Client, spent: float, now: datetime) -> AnthropicError | None:
    """The error for a client whose spend this month has reached its budget, else None."""
    if client.budget_usd is None or spent < client.budget_usd:
        return None
    reset = next_reset(now).strftime("%Y-%m-%d %H:%M UTC")
    return AnthropicError(
        "billing_error",
        f"Client '{client.name}' has used its monthly budget: ${spent:.4f} spent of "
        f"${client.budget_usd:.2f} this month; it resets on {reset}.",
    )


async def check_budget(spend: SpendService, client: Client) -> None:
    """Raise the 402 `billing_error` if this client may not start another request."""
    if client.budget_usd is None:
        return
    spent = await spend.month_spent(client.name)
    error = over_budget(client, spent, datetime.now(UTC))
    if error is not None:
        raise error
