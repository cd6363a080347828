"""The errors a user can cause or meet, each with a one-line message naming the fix."""
from engine.backends.base import BackendError
from engine.corpus import CorpusError
from engine.embed import EmbeddingError
from engine.pipeline import QuestionError, ResearchFailed
from engine.profiles import ProfileError

USER_ERRORS = (ProfileError, CorpusError, QuestionError, BackendError, EmbeddingError, ResearchFailed)
