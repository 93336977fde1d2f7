"""`make demo`: the nine-subject trial of NCT05030779, driven through the HTTP APIs.

``story`` writes the trial as data from a seed (no I/O); ``client`` speaks HTTP as one
logged-in user; ``enrolment``, ``safety`` and ``follow_up`` take the story's steps through
the services; ``summary`` reads the result back as an auditor; ``__main__`` is the CLI.
"""
