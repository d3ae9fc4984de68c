"""Claim checks; importing this package registers them all with :mod:`verify._registry`."""

from . import _approx_claims  # noqa: F401
from . import _generator_claims  # noqa: F401
from . import _isan_claims  # noqa: F401
from . import _learner_claims  # noqa: F401
from . import _spectral_claims  # noqa: F401
from . import _real_claims  # noqa: F401
from . import _real_structure_claims  # noqa: F401
from . import _lingen_claims  # noqa: F401
