"""The Media Gateway layer's exceptions.

The layer imports nothing from the rest of corral (it must run beside a corral server or against
E2B's cloud alone), so it cannot derive from `corral.errors.CorralError`; its base carries an HTTP
status the same way, so a front end (the gateway, the CLI) can map any of them to a clear answer.
"""

from __future__ import annotations


class MediaGatewayError(Exception):
    """Base of every error this layer raises on purpose. `status` is the HTTP status a front end
    should answer with, `code` a short machine-readable name."""

    status: int = 500
    code: str = "media_gateway_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class ConfigError(MediaGatewayError, ValueError):
    """A configuration value (environment or SandboxSecurityConfig field) is out of range or
    malformed. `field` names the setting."""

    status = 400
    code = "invalid_config"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class TransferTooLargeError(MediaGatewayError):
    """An upload or download exceeds the security config's cap; raised before any byte moves."""

    status = 413
    code = "transfer_too_large"

    def __init__(self, direction: str, path: str, size: int, limit: int) -> None:
        super().__init__(f"{direction} of {path} refused: {size} bytes exceeds the limit of {limit} bytes")
        self.direction = direction
        self.path = path
        self.size = size
        self.limit = limit


class ResourceLimitError(MediaGatewayError):
    """The sandbox would get more CPU or memory than the security config allows."""

    status = 400
    code = "resource_limit"


class SandboxError(MediaGatewayError):
    """The sandbox service failed an operation (create, execute, transfer, terminate)."""

    status = 502
    code = "sandbox_error"


class OutputValidationError(MediaGatewayError):
    """The sandbox's output is not valid JSON, is too large, or does not match the agent's schema."""

    status = 502
    code = "invalid_output"


class InputValidationError(MediaGatewayError, ValueError):
    """A task's inputs are not JSON (layer 4: inputs are checked before they reach a sandbox)."""

    status = 400
    code = "invalid_input"


class CodeGenerationError(MediaGatewayError):
    """The code generator failed or returned no code."""

    status = 502
    code = "code_generation_failed"


class UnknownAgentError(MediaGatewayError):
    status = 404
    code = "unknown_agent"
