"""The Media Gateway layer (the product spec's §3-§8): sandboxed agents on the official E2B SDK.

It imports nothing from the rest of corral: it talks to a sandbox service (a corral server or
E2B's cloud, chosen by configuration) only through the `e2b` SDK. See docs/MEDIA_GATEWAY.md.
"""

from .adapters import AdapterStore, DirectoryAdapterStore
from .agent import Agent, AgentResult, AgentTask, SandboxedAgent
from .agents import AGENTS, AgentRequest, AgentRun
from .catalog import Catalog, load_catalog
from .codegen import CodeGenerator, CodeRequest, OfflineGenerator, extract_code, generator_from_env
from .errors import (CodeGenerationError, ConfigError, InputValidationError, MediaGatewayError, OutputValidationError, ResourceLimitError,
                     SandboxError, TransferTooLargeError)
from .manager import ExecutionResult, Sandbox, SandboxManager, SandboxStatus
from .orchestrator import Orchestrator
from .security import Language, SandboxSecurityConfig
from .settings import Settings
from .trace import AgentStep, Attempt, RankedItem, RequestTrace

__all__ = [
    "AGENTS", "AdapterStore", "Agent", "AgentRequest", "AgentResult", "AgentRun", "AgentStep", "AgentTask", "Attempt",
    "Catalog", "CodeGenerationError", "CodeGenerator", "CodeRequest", "ConfigError", "DirectoryAdapterStore",
    "ExecutionResult", "InputValidationError", "Language", "MediaGatewayError", "OfflineGenerator", "Orchestrator", "OutputValidationError",
    "RankedItem", "RequestTrace", "ResourceLimitError", "Sandbox", "SandboxError", "SandboxManager",
    "SandboxSecurityConfig", "SandboxStatus", "SandboxedAgent", "Settings", "TransferTooLargeError", "extract_code",
    "generator_from_env", "load_catalog",
]
