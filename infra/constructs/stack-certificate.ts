import { Arn, type CfnElement, CustomResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { Function as LambdaFn } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { StringParameter } from 'aws-cdk-lib/aws-ssm';
import { Provider } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';

export interface StackCertificateProps {
  /** The name the server certificate is for: the load balancer's DNS name. */
  readonly dnsName: string;
  /** functions/stack-certificate.ts, built like the broker's other functions. */
  readonly issuer: LambdaFn;
  readonly logRetention: RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * A TLS certificate the stack makes for itself, for a deploy with neither a domain nor an ACM
 * certificate: a custom resource (CloudFormation cannot import a certificate into ACM) runs
 * functions/stack-certificate.ts, which makes the stack's CA once (its key in a Secrets Manager
 * secret), issues a server certificate for the load balancer's DNS name and imports it into ACM.
 * The CA's certificate, which clients pin (`--cafile`), is in an SSM parameter. A daily rule
 * invokes the same function to re-import a new server certificate into the same ARN a month
 * before the old one expires. The resource depends on the load balancer (its name) and the
 * TLS listeners on the resource (its ARN): no cycle.
 */
export class StackCertificate extends Construct {
  readonly certificateArn: string;
  /** The CA's private key and certificate (JSON); read by the issuer only. */
  readonly caSecret: Secret;
  /** The CA's certificate, PEM: what clients trust. */
  readonly caCertificate: StringParameter;
  readonly renewal: Rule;
  readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: StackCertificateProps) {
    super(scope, id);
    const { issuer } = props;
    this.caSecret = new Secret(this, 'CaKey', {
      description: "The MQTT broker stack's own certificate authority (private key and certificate), which signs the load balancer's TLS certificate",
      // A new stack makes a new CA; nothing else is signed by it.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.caSecret.grantRead(issuer);
    this.caSecret.grantWrite(issuer);
    issuer.addEnvironment('CA_SECRET_ARN', this.caSecret.secretArn);
    // The ARN of a certificate not yet imported is unknown: the region's certificates, and only
    // the actions the handler needs.
    issuer.addToRolePolicy(
      new PolicyStatement({
        actions: ['acm:ImportCertificate', 'acm:DescribeCertificate', 'acm:DeleteCertificate'],
        resources: [Arn.format({ service: 'acm', resource: 'certificate', resourceName: '*' }, Stack.of(this))],
      }),
    );

    const provider = new Provider(this, 'Provider', {
      onEventHandler: issuer,
      logGroup: new LogGroup(this, 'ProviderLogs', { retention: props.logRetention, removalPolicy: props.removalPolicy }),
    });
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::StackTlsCertificate',
      properties: { DnsName: props.dnsName },
    });
    this.certificateArn = this.resource.getAttString('CertificateArn');

    this.caCertificate = new StringParameter(this, 'CaCertificate', {
      description: "The MQTT broker's CA certificate (PEM): pass it to clients as --cafile",
      stringValue: this.resource.getAttString('CaCertificate'),
    });

    this.renewal = new Rule(this, 'RenewDaily', {
      description: "Re-imports the MQTT broker's TLS certificate a month before it expires",
      schedule: Schedule.rate(Duration.days(1)),
      targets: [new LambdaFunction(issuer, { event: RuleTargetInput.fromObject({ renew: { certificateArn: this.certificateArn, dnsName: props.dnsName } }) })],
    });

    Validations.of(this.caSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: "Rotating the CA key would break every client that pins the CA; the server certificate it signs is renewed instead, daily check, a month before expiry",
    });
    Validations.of(issuer).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:acm:<AWS::Region>:<AWS::AccountId>:certificate/*]',
      reason: "ImportCertificate of a new certificate has no ARN to name yet; the actions are limited to import, describe and delete in this account's region",
    });
    Validations.of(provider).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: "The custom resource framework's function writes its own CloudWatch logs with AWS's managed policy; nothing else",
    });
    Validations.of(provider).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(issuer.node.defaultChild as CfnElement)}.Arn>:*]`,
      reason: "The framework may invoke the certificate function's versions and aliases; CDK grants that form of the function's own ARN",
    });
  }
}
