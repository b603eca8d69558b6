/** The devices' door as deployed: NLB ports and protocols, target groups, the Fargate listener. */
import { readFileSync } from 'node:fs';
import { Match } from 'aws-cdk-lib/assertions';
import { AssetManifestArtifact } from 'aws-cdk-lib/cx-api';
import { describe, expect, it } from 'vitest';
import { logicalId, synthBroker, TEST_CERTIFICATE_ARN } from './stack-fixture';

const listeners = (context: Record<string, string> = {}) =>
  Object.values(synthBroker(context).template.findResources('AWS::ElasticLoadBalancingV2::Listener')).map((l) => l.Properties);

describe('load balancer', () => {
  const synthesized = synthBroker();
  const { template, stack } = synthesized;
  const mqttTargets = logicalId(synthesized, stack.deviceListener.targetGroups.mqtt!);
  const wsTargets = logicalId(synthesized, stack.deviceListener.targetGroups.mqttWebSocket);

  it('is internet-facing, across AZs, in the public subnets, behind its own security group', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Type: 'network',
      Scheme: 'internet-facing',
      SecurityGroups: [{ 'Fn::GetAtt': [logicalId(synthesized, stack.deviceListener.loadBalancerSecurityGroup), 'GroupId'] }],
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'load_balancing.cross_zone.enabled', Value: 'true' }]),
    });
  });

  it('terminates TLS on 8883 (MQTT) and 443 (MQTT over WebSocket) with the context certificate, and nothing else by default', () => {
    const tls = { Protocol: 'TLS', SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06', Certificates: [{ CertificateArn: TEST_CERTIFICATE_ARN }] };
    expect(listeners()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Port: 8883, ...tls, DefaultActions: [{ Type: 'forward', TargetGroupArn: { Ref: mqttTargets } }] }),
        expect.objectContaining({ Port: 443, ...tls, DefaultActions: [{ Type: 'forward', TargetGroupArn: { Ref: wsTargets } }] }),
      ]),
    );
    expect(listeners().map((l) => l.Port).sort()).toEqual([443, 8883]);
  });

  it('forwards TCP to the listener tasks by IP: 1883 for MQTT, 8083 for MQTT over WebSocket, TCP health checks on the same ports', () => {
    for (const port of [1883, 8083]) {
      template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
        Port: port,
        Protocol: 'TCP',
        TargetType: 'ip',
        HealthCheckProtocol: 'TCP',
        HealthCheckPort: String(port),
      });
    }
  });

  it('deregisters a task in 10 s and leaves its connections open, so the SIGTERM drain still reaches them', () => {
    for (const group of Object.values(template.findResources('AWS::ElasticLoadBalancingV2::TargetGroup'))) {
      expect(group.Properties.TargetGroupAttributes).toEqual(
        expect.arrayContaining([
          { Key: 'deregistration_delay.timeout_seconds', Value: '10' },
          { Key: 'deregistration_delay.connection_termination.enabled', Value: 'false' },
        ]),
      );
    }
  });

  it('both target groups send a PROXY protocol v2 header, which the listener is told to require', () => {
    for (const group of Object.values(template.findResources('AWS::ElasticLoadBalancingV2::TargetGroup'))) {
      expect(group.Properties.TargetGroupAttributes).toEqual(expect.arrayContaining([{ Key: 'proxy_protocol_v2.enabled', Value: 'true' }]));
    }
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [Match.objectLike({ Environment: Match.arrayWith([{ Name: 'MQTT_PROXY_PROTOCOL', Value: 'true' }]) })],
    });
  });

  it('adds plain MQTT on TCP 1883 only with context plainMqtt=true', () => {
    const plain = listeners({ plainMqtt: 'true' }).find((l) => l.Port === 1883);
    expect(plain).toMatchObject({ Protocol: 'TCP', DefaultActions: [{ Type: 'forward', TargetGroupArn: { Ref: mqttTargets } }] });
    expect(plain).not.toHaveProperty('Certificates');
    expect(listeners({ plainMqtt: 'false' }).map((l) => l.Port).sort()).toEqual([443, 8883]);
  });
});

describe('certificate from a domain and a hosted zone', () => {
  const { template } = synthBroker({ domainName: 'mqtt.example.com', hostedZoneId: 'Z0123456789ABC' }, { certificate: false });

  it('creates an ACM certificate validated through the zone, and the TLS listeners use it', () => {
    template.hasResourceProperties('AWS::CertificateManager::Certificate', {
      DomainName: 'mqtt.example.com',
      ValidationMethod: 'DNS',
      DomainValidationOptions: [{ DomainName: 'mqtt.example.com', HostedZoneId: 'Z0123456789ABC' }],
    });
    const certificate = Object.keys(template.findResources('AWS::CertificateManager::Certificate'))[0]!;
    for (const listener of Object.values(template.findResources('AWS::ElasticLoadBalancingV2::Listener'))) {
      expect(listener.Properties.Certificates).toEqual([{ CertificateArn: { Ref: certificate } }]);
    }
  });

  it('points the domain at the load balancer and names it in the endpoints', () => {
    template.hasResourceProperties('AWS::Route53::RecordSet', { Name: 'mqtt.example.com.', Type: 'A', HostedZoneId: 'Z0123456789ABC' });
    template.hasOutput('MqttTlsEndpoint', { Value: 'mqtts://mqtt.example.com:8883' });
    template.hasOutput('MqttWebSocketTlsEndpoint', { Value: 'wss://mqtt.example.com/mqtt' });
  });
});

describe('listener tasks', () => {
  const synthesized = synthBroker();
  const { template, stack } = synthesized;

  it('run the listener image on Fargate arm64, built from functions/listener/Dockerfile for linux/arm64', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RequiresCompatibilities: ['FARGATE'],
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
      NetworkMode: 'awsvpc',
    });
    const assembly = synthesized.app.synth();
    const manifest = assembly.artifacts.find((a) => a instanceof AssetManifestArtifact)!;
    const images = Object.values((JSON.parse(readFileSync(manifest.file, 'utf8')) as { dockerImages: Record<string, { source: object }> }).dockerImages);
    expect(images.map((image) => image.source)).toEqual([
      expect.objectContaining({ dockerFile: 'functions/listener/Dockerfile', platform: 'linux/arm64' }),
    ]);
  });

  it('expose 1883, 8083 and the delivery port 8090, invoke the packet handler, and get 30 s to drain after SIGTERM', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          PortMappings: [
            { ContainerPort: 1883, Protocol: 'tcp' },
            { ContainerPort: 8083, Protocol: 'tcp' },
            { ContainerPort: 8090, Protocol: 'tcp' },
          ],
          Environment: Match.arrayWith([
            { Name: 'PACKET_HANDLER_FUNCTION', Value: { 'Fn::GetAtt': [logicalId(synthesized, stack.handlers.packets), 'Arn'] } },
            { Name: 'MQTT_PORT', Value: '1883' },
            { Name: 'MQTT_WS_PORT', Value: '8083' },
            { Name: 'DELIVERY_PORT', Value: '8090' },
          ]),
          StopTimeout: 120,
          ReadonlyRootFilesystem: true,
          LogConfiguration: Match.objectLike({ LogDriver: 'awslogs' }),
        }),
      ],
    });
  });

  it('sit in the private subnets without public IPs, start a new task before stopping an old one, and roll back a failed deployment', () => {
    template.hasResourceProperties('AWS::ECS::Service', {
      LaunchType: 'FARGATE',
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }) },
      DeploymentConfiguration: Match.objectLike({
        MinimumHealthyPercent: 100,
        MaximumPercent: 200,
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
      }),
    });
  });

  it('leave the task count to autoscaling, so a deployment does not reset a scaled-out service', () => {
    expect(Object.values(template.findResources('AWS::ECS::Service'))[0]!.Properties.DesiredCount).toBeUndefined();
  });
});
