"""Activities: every side effect Nurture has (store writes, email sends, tasks, signals to other
enrollments) and every computation whose answer may change between releases (schedules).

Each module holds one use case. Activities are synchronous (the store, the Gmail client and the
SendGrid SDK are blocking libraries) and run in the worker's thread pool.
"""
