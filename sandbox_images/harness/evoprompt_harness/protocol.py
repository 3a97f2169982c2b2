"""The job protocol between the harness and the server: exit statuses (the server imports this
module from the same folder, so the two sides cannot disagree)."""

EXIT_OK = 0  # trained; the server scores the outputs
EXIT_BAD_JOB = 2  # the job itself is malformed (the server's fault, never the candidate's)
EXIT_CANDIDATE_FAILED = 3  # the candidate failed; output/result.json says how
