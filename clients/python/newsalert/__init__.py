"""newsalert: a Python client for newsalertd's alerts.

    import newsalert
    with newsalert.Client("tcp://127.0.0.1:5556", catchup="tcp://127.0.0.1:5557",
                          tags=["aid"]) as c:
        for alert in c:              # newsalert.v1.alert_pb2.Alert, in seq order
            print(alert.seq, alert.headline)

Gaps in the numbering (a slow consumer, a reconnect, the end of a burst)
are repaired from the daemon's catch-up endpoint; a daemon whose journal
started over (a new epoch) is followed from its first alert.

Several daemons that tag the same feed (an active-active pair, or shards)
are followed together with newsalert.MultiClient, which yields each alert
key once."""

from .client import HEARTBEAT_TOPIC, Client, Stats
from .errors import CatchupRefused, KeyFileError, NewsalertError
from .keys import load_certificate, parse_certificate
from .merge import MultiClient, alert_key
from .v1 import alert_pb2, article_pb2, catchup_pb2

__all__ = ["Client", "MultiClient", "alert_key", "Stats", "HEARTBEAT_TOPIC", "NewsalertError", "KeyFileError",
           "CatchupRefused", "load_certificate", "parse_certificate", "alert_pb2",
           "article_pb2", "catchup_pb2"]
__version__ = "0.1.0"
