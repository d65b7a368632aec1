"""`arrears.client`: a typed client of the Arrears APIs (sync and async), built on httpx.

```python
from arrears.client import Client, ConsumptionRecord

with Client("http://127.0.0.1:8000", api_key, seller_id) as client:
    result = client.submit_bulk(
        ConsumptionRecord(subscription_id=sid, item_code="storage-gb", quantity="12.5",
                          due_date="2026-11-01T00:00:00Z", key="vm-41/2026-11-01")
        for sid in subscriptions
    )
    assert result.ok, result.failed
```
"""

from arrears.client._async import AsyncClient
from arrears.client._base import DEFAULT_CHUNK_SIZE
from arrears.client._errors import (
    ApiError,
    ArrearsClientError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    Problem,
    ProblemError,
    RateLimitedError,
    ServerError,
    TooLargeError,
    TransportFailure,
    UnexpectedResponse,
)
from arrears.client._models import BulkResult, FailedRecord, Task, TaskError
from arrears.client._records import ConsumptionRecord, derived_key, idempotency_key
from arrears.client._retry import RetryPolicy
from arrears.client._sync import Client

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ApiError",
    "ArrearsClientError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "BulkResult",
    "Client",
    "ConflictError",
    "ConsumptionRecord",
    "FailedRecord",
    "ForbiddenError",
    "InvalidError",
    "NotFoundError",
    "Problem",
    "ProblemError",
    "RateLimitedError",
    "RetryPolicy",
    "ServerError",
    "Task",
    "TaskError",
    "TooLargeError",
    "TransportFailure",
    "UnexpectedResponse",
    "derived_key",
    "idempotency_key",
]
