# expect: COMPILE_ERROR import failed
import tensorflow_that_does_not_exist  # noqa: F401
