"""The SageMaker execution role's least-privilege policy for one bucket (the spec's, parameterised)."""

from __future__ import annotations


def role_policy(bucket: str, secret_prefix: str | None = "cardid/") -> dict:
    statements = [
        {
            "Sid": "ListTheBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
            "Resource": f"arn:aws:s3:::{bucket}",
        },
        {
            "Sid": "ReadWriteTheLayout",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": [f"arn:aws:s3:::{bucket}/{p}/*" for p in ("datasets", "models", "artifacts")],
        },
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
            ],
            "Resource": "arn:aws:logs:*:*:log-group:/aws/sagemaker/TrainingJobs*",
        },
        {"Sid": "Metrics", "Effect": "Allow", "Action": ["cloudwatch:PutMetricData"], "Resource": "*"},
        {
            "Sid": "PullTrainingImage",
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability",
            ],
            "Resource": "*",
        },
    ]
    if secret_prefix:
        statements.append(
            {
                "Sid": "ReadHfToken",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": f"arn:aws:secretsmanager:*:*:secret:{secret_prefix}*",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}
