"""The errors a user can cause or meet, each with a one-line message naming the fix."""
from .backends.base import BackendError
from .corpus import CorpusError
from .embed import EmbeddingError
from .pipeline import QuestionError, ResearchFailed
from .profiles import ProfileError
from .telemetry import TelemetryPathError

USER_ERRORS = (ProfileError, CorpusError, QuestionError, BackendError, EmbeddingError, ResearchFailed,
               TelemetryPathError)
