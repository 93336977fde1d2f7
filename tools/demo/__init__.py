"""`make demo`: the nine-subject trial of NCT05030779, driven through the HTTP APIs.

``story`` decides what happens (``plan`` holds it as data; ``clinical`` and ``outcomes``
draw the seeded values), with no I/O. ``client`` speaks HTTP as one logged-in user;
``team`` makes the users; ``enrollment``, ``safety`` and ``follow_up`` take the story's
steps through the services; ``summary`` reads the trial back as the auditor; ``run``
puts it together and ``__main__`` is the command line.
"""
