"""Discovery networks: where a swarm finds the peers of a topic, behind one interface.

* :mod:`.discovery_backend`: the :class:`~.discovery_backend.DiscoveryBackend` interface
  (announce, unannounce, lookup, find a peer) every network implements.
* :mod:`._backend`: which network a swarm uses (a given one, the local network, or a DHT
  named by ``P2PSWARM_BOOTSTRAP``), and announcing the swarm itself.
* :mod:`.local_network` (with :mod:`._local_probe`): the zero-config network of the
  machines on one LAN; :mod:`.network_config`: bootstrap lists from the environment.

The own-wire DHT is :mod:`p2pswarm.dht` (a network too, kept in its own package); a
HyperDHT network goes beside it. Nothing here imports the swarm.
"""

from __future__ import annotations

__all__ = ()
