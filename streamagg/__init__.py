"""streamagg: live CDR reports for VoIP carriers, computed from Kafka with Faust."""

from streamagg.errors import StreamaggError
from streamagg.settings import Settings

__all__ = ["Settings", "StreamaggError"]
__version__ = "0.1.0"
