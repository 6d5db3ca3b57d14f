"""Templates from a Dockerfile and an e2b.toml, built without Docker, one cached layer per step."""

from corral.builder.builder import (DockerfileBuilder, DockerfileBuildResult, StepEvent, StepFailed,
                                                 build_dockerfile)
from corral.builder.config import ConfigError, TemplateConfig, load
from corral.templates.image import IMAGE_FILE, ImageConfig, load_image_config
from corral.builder.parser import DockerfileError, parse

__all__ = ["ConfigError", "DockerfileBuildResult", "DockerfileBuilder", "DockerfileError", "IMAGE_FILE",
           "ImageConfig", "StepEvent", "StepFailed", "TemplateConfig", "build_dockerfile", "load",
           "load_image_config", "parse"]
