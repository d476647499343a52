"""Models: encoders (a registry by modality kind; any user ``nn.Module`` accepted), fusion heads
(one module each, owning its parameter columns) and the multimodal model with a unimodal head
per modality."""

from workbench.models.encoders import ModalitySpec, available_encoders, register_encoder
from workbench.models.fusion import FUSIONS, FusionHead, available_fusions, register_fusion
from workbench.models.multimodal import ModelOutput, MultimodalModel, build_model

__all__ = ["FUSIONS", "FusionHead", "ModalitySpec", "ModelOutput", "MultimodalModel", "available_encoders",
           "available_fusions", "build_model", "register_encoder", "register_fusion"]
