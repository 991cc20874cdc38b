"""Models: backbone registry, projection and margin heads, artefact save/load."""

from cardid.models import lite as _lite  # noqa: F401  (registers the packaged backbones)
from cardid.models import opennsfw as _opennsfw  # noqa: F401
from cardid.models.backbones import Backbone, BackboneSpec, create_backbone, list_backbones
from cardid.models.heads import ArcFace, ProjectionHead
from cardid.models.model import EmbeddingModel, Teacher

__all__ = [
    "ArcFace",
    "Backbone",
    "BackboneSpec",
    "EmbeddingModel",
    "ProjectionHead",
    "Teacher",
    "create_backbone",
    "list_backbones",
]
