"""The client side: start enrollments, signal them, query them. The CLI and the HTTP API call
these functions; so can any Python program (see README "Python API")."""
