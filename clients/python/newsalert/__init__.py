"""newsalert: a Python client for newsalertd's alerts.

    import newsalert
    with newsalert.Client("tcp://127.0.0.1:5556", catchup="tcp://127.0.0.1:5557",
                          tags=["aid"]) as c:
        for alert in c:              # newsalert.v1.alert_pb2.Alert, in seq order
            print(alert.seq, alert.headline)

Gaps in the numbering (a slow consumer, a reconnect, the end of a burst)
are repaired from the daemon's catch-up endpoint; a daemon whose journal
started over (a new epoch) is followed from its first alert."""

from .client import HEARTBEAT_TOPIC, Client, Stats
from .errors import CatchupRefused, KeyFileError, NewsalertError
from .keys import load_certificate, parse_certificate
from .v1 import alert_pb2, article_pb2, catchup_pb2

__all__ = ["Client", "Stats", "HEARTBEAT_TOPIC", "NewsalertError", "KeyFileError",
           "CatchupRefused", "load_certificate", "parse_certificate", "alert_pb2",
           "article_pb2", "catchup_pb2"]
__version__ = "0.1.0"
