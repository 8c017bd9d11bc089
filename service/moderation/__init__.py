"""The moderators' work: the queue of held comments, reviews, authors' standing, statistics."""
