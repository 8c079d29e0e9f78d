"""Brief: a question and sources in, a cited research report out, on AWS Lambda."""
