"""Redis Cluster: ``redis+cluster://`` URLs, and the engine's failure timing on a cluster client.

The store itself needs nothing cluster-specific: a conversation's keys share one hash tag, so its
pipelined load and its CAS script stay in one slot, and redis-py routes them to that slot's
master. What differs is the client: a cluster client has no single ``connection_pool`` whose
settings the engine can tighten, so ``apply_cluster_failure_policy`` reaches into its nodes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in SCHEMES


def cluster_from_url(url: str, *, asynchronous: bool = False, **options: Any) -> Any:
    """A ``RedisCluster`` (``redis.asyncio`` one when ``asynchronous``) from a ``redis+cluster://`` URL.

    ``redis+cluster://[user:password@]host:port[,host:port...][?option=value]``: the hosts are
    startup nodes (one is enough; the client discovers the rest); ``rediss+cluster`` uses TLS.
    """
    scheme, netloc, path, query, _ = urlsplit(url)
    if scheme.lower() not in SCHEMES:
        raise ValueError(f"not a cluster URL: {url!r} (expected redis+cluster:// or rediss+cluster://)")
    credentials, _, hosts = netloc.rpartition("@")
    first, *others = hosts.split(",")
    single = urlunsplit((SCHEMES[scheme.lower()], f"{credentials}@{first}" if credentials else first, path, query, ""))
    if asynchronous:
        from redis.asyncio.cluster import ClusterNode as AsyncNode
        from redis.asyncio.cluster import RedisCluster as AsyncCluster

        async_nodes = [AsyncNode(*_host_port(h)) for h in others]
        return AsyncCluster.from_url(single, startup_nodes=async_nodes or None, **options)
    from redis.cluster import ClusterNode, RedisCluster

    nodes = [ClusterNode(*_host_port(h)) for h in others]  # type: ignore[no-untyped-call]
    return RedisCluster.from_url(single, startup_nodes=nodes, **options)


def is_cluster_client(client: Any) -> bool:
    return hasattr(client, "nodes_manager") and hasattr(client, "get_node_from_key")


def apply_cluster_failure_policy(client: Any, *, socket_timeout: float, connect_timeout: float, retries: int) -> None:
    """Give every node of a cluster client (sync or asyncio) these timeouts, and the client bounded retry.

    Nodes discovered later are built from the nodes manager's kwargs, so they get them too.
    """
    timeouts = {"socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout}
    backoff = ExponentialWithJitterBackoff(cap=0.2, base=0.05)
    manager = client.nodes_manager
    manager.connection_kwargs.update(timeouts)
    for node in list(manager.nodes_cache.values()):
        if hasattr(node, "redis_connection"):  # redis.cluster: a Redis client per node
            if node.redis_connection is not None:
                pool = node.redis_connection.connection_pool
                pool.connection_kwargs.update(timeouts)
                # A connection object keeps the timeouts it was made with, even across a reconnect:
                # drop the ones made before (the client's discovery of the cluster made some).
                pool.disconnect()
                pool.reset()
        else:  # redis.asyncio.cluster: the node builds its connections from its kwargs
            node.connection_kwargs.update(timeouts)
    asynchronous = hasattr(client, "connection_kwargs")  # only the asyncio client keeps its own copy
    if asynchronous:
        client.connection_kwargs.update(timeouts)
    client.set_retry((AsyncRetry if asynchronous else Retry)(backoff, retries))


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def sync_twin(client: Any) -> Any:
    """A synchronous redis-py client to the same server(s) as the ``redis.asyncio`` ``client``.

    For what must stay synchronous next to an async engine (the Redis calendar, which runs on
    the engine's calendar threads).
    """
    import redis
    from redis.cluster import ClusterNode, RedisCluster

    if is_cluster_client(client):
        nodes = [ClusterNode(n.host, n.port) for n in client.get_nodes()]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=nodes, password=getattr(client, "password", None))
    kwargs = dict(getattr(getattr(client, "connection_pool", None), "connection_kwargs", {}))
    keep = ("host", "port", "db", "username", "password", "path", "socket_timeout", "socket_connect_timeout")
    return redis.Redis(**{k: v for k, v in kwargs.items() if k in keep})
