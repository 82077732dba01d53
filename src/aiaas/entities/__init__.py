"""Plain domain entities: what the store's repositories return and the services hand out.

They sit below both the store and the domains (as MLflow's ``mlflow.entities`` do), so a
repository in :mod:`aiaas.store` can build the very objects a domain service returns
without the store importing a domain, or a domain importing a row class.
"""

from __future__ import annotations
